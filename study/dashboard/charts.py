"""What a writable ``kdtune dashboard`` keeps current in each kdtune study.

:func:`publish` writes, per kdtune study and only where it changed: the metric names (studies
created before kdtune set them), a hypervolume chart (a user-defined plotly graph object)
and a section at the end of the study note naming the trial ``kdtune export --pick knee``
picks. :class:`Refresher` repeats it every few seconds in a background thread.

Why: docs/design.md, "Dashboard hypervolume charts".
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from kdtune.attrs import STUDY_CONFIG
from kdtune.storage.optuna_adapter import study_id

from ..config import StudyConfig, config_from_json
from ..export.pick import study_pick
from ..front import complete_trials, hypervolume_history, pareto_front, reference_point
from ..rescore import seed_summary
from ..service import metric_names

HYPERVOLUME_GRAPH_ID = "kdtune-hypervolume"
"""The id under which the hypervolume chart is saved in each study (overwritten each time)."""
KNEE_HEADING = "### kdtune: the trial `kdtune export --pick knee` picks"
"""The heading of kdtune's section of the study note; it and what follows it are rewritten."""

_log = logging.getLogger(__name__)


class _PlotlyJSON:
    """A plotly figure already in JSON form.

    :func:`optuna_dashboard.save_plotly_graph_object` only calls ``figure.to_json()`` and
    stores the result; this object provides exactly that, without the plotly package.
    """

    def __init__(self, figure: dict[str, Any]) -> None:
        self._figure = figure

    def to_json(self) -> str:
        return json.dumps(self._figure)


def hypervolume_figure(
    history: Sequence[tuple[int, float]], ref: Sequence[float], objectives: Sequence[str],
    title: str = "Hypervolume history",
) -> dict[str, Any]:
    """A plotly figure (as plain JSON data) of ``(trial number, hypervolume)`` pairs.

    The y axis starts at 0, so a small gain does not look large.
    """
    shown = ", ".join(f"{m}={r:g}" for m, r in zip(objectives, ref, strict=True))
    return {
        "data": [{
            "type": "scatter",
            "mode": "lines+markers",
            "name": "hypervolume",
            "x": [n for n, _ in history],
            "y": [h for _, h in history],
            "line": {"shape": "hv"},
        }],
        "layout": {
            "title": {"text": f"{title}<br><sub>reference point: {shown}</sub>"},
            "xaxis": {"title": {"text": "trial"}},
            "yaxis": {"title": {"text": "hypervolume"}, "rangemode": "tozero"},
        },
    }


def knee_section(study: optuna.Study, cfg: StudyConfig, complete: Sequence[FrozenTrial]) -> str:
    """kdtune's part of the study note: the trial ``kdtune export --pick knee`` picks.

    Export's own choice (:func:`~..export.trial.study_pick`: the knee of the Pareto front,
    on the seed means once the study is rescored), shown with its own run's figures.
    """
    seeds = seed_summary(study, cfg)
    picked = study_pick(study, cfg, "knee", seeds=seeds)
    values = ", ".join(f"{m} {v:.4g}" for m, v in zip(cfg.objectives, picked.values, strict=True))
    means = " The front is compared on its seed means (`kdtune rescore`)." if seeds else ""
    return (f"{KNEE_HEADING}\n\n**Trial {picked.number}**: {values}. Of the "
            f"{len(pareto_front(study))} trials on the Pareto front, the one nearest the ideal "
            f"point, each objective scaled to [0, 1] over the front.{means} optuna-dashboard "
            "colours the front by trial number, not by this choice.\n\n"
            f"_Kept current by `kdtune dashboard --publish` "
            f"(as of {len(complete)} complete trials)._\n")


def with_section(body: str, section: str) -> str:
    """``body`` with kdtune's section (from :data:`KNEE_HEADING` to the end) replaced."""
    kept = body.split(KNEE_HEADING, 1)[0].rstrip()
    return f"{kept}\n\n{section}" if kept else section


def publish_study(storage: optuna.storages.BaseStorage, name: str, cfg: StudyConfig) -> str:
    """Bring one kdtune study's metric names, chart and note up to date; write only changes.

    Returns:
        what was written (``"wrote chart, note"``), ``"up to date"``, or why nothing could be
        (``"no complete trials yet"``).
    """
    from optuna_dashboard import save_note, save_plotly_graph_object
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects
    from optuna_dashboard._note import get_note_from_system_attrs

    study = optuna.load_study(study_name=name, storage=storage,
                              sampler=optuna.samplers.RandomSampler())
    wrote = []
    if study.metric_names is None:  # a study created before kdtune named its metrics
        study.set_metric_names(metric_names(cfg.objectives))
        wrote.append("metric names")
    complete = complete_trials(study)
    if not complete:
        return f"wrote {', '.join(wrote)}" if wrote else "no complete trials yet"
    attrs = storage.get_study_system_attrs(study_id(study))
    if len(cfg.objectives) >= 2:
        ref = reference_point(cfg, complete)
        chart = _PlotlyJSON(hypervolume_figure(hypervolume_history(study, cfg, ref), ref,
                                               cfg.objectives,
                                               f"{name}: hypervolume of the Pareto front"))
        if get_plotly_graph_objects(attrs).get(HYPERVOLUME_GRAPH_ID) != chart.to_json():
            save_plotly_graph_object(study, chart, graph_object_id=HYPERVOLUME_GRAPH_ID)
            wrote.append("chart")
    old = get_note_from_system_attrs(attrs, None)["body"]
    new = with_section(old, knee_section(study, cfg, complete))
    if new != old:
        save_note(study, new)
        wrote.append("note")
    return f"wrote {', '.join(wrote)}" if wrote else "up to date"


def publish(storage: optuna.storages.BaseStorage) -> dict[str, str]:
    """:func:`publish_study` for every kdtune study in ``storage`` (others are left alone).

    A study that fails is logged and skipped: the dashboard must still start.

    Returns:
        ``{study name: what happened}``; a failure reads ``"failed: <error>"``.
    """
    outcome: dict[str, str] = {}
    for summary in storage.get_all_studies():
        raw = summary.user_attrs.get(STUDY_CONFIG)
        if raw is None:
            continue  # not a kdtune study
        name = summary.study_name
        try:
            outcome[name] = publish_study(storage, name, config_from_json(json.dumps(raw)))
        except Exception as e:  # one bad study must not keep the others from their charts
            _log.warning("kdtune dashboard: study %r not updated: %s", name, e)
            outcome[name] = f"failed: {type(e).__name__}: {e}".splitlines()[0]
    return outcome


class Refresher:
    """Calls ``publish_fn(storage)`` every ``interval`` seconds in a daemon thread.

    A context manager: entering starts the thread, leaving stops it and waits for a round in
    progress (at most ``join_timeout`` seconds). A failed round (the storage unreachable) is
    logged and the next one runs as planned.
    """

    def __init__(self, storage: optuna.storages.BaseStorage, interval: float,
                 publish_fn: Callable[[Any], object] = publish,
                 join_timeout: float = 30.0) -> None:
        if interval <= 0:
            raise ValueError(f"the refresh interval must be positive, got {interval}")
        self.storage, self.interval, self.rounds = storage, interval, 0
        self._publish, self._join_timeout = publish_fn, join_timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kdtune-dashboard-refresh",
                                        daemon=True)

    def __enter__(self) -> Refresher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Ask the thread to end and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._join_timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._publish(self.storage)
            except Exception as e:  # e.g. the database restarting: try again next round
                _log.warning("kdtune dashboard: refresh failed: %s", e)
            self.rounds += 1
