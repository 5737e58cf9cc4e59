"""Parameter importances per objective (PED-ANOVA), for the report."""

from __future__ import annotations

import warnings

import optuna

from kdtune.errors import KdtuneError

from ..config import StudyConfig
from ..front import complete_trials

MIN_TRIALS_FOR_IMPORTANCE = 4
"""Fewer complete trials than this: no importances (the report says why instead)."""
FEW_TRIALS_FOR_IMPORTANCE = 20
"""Fewer complete trials than this: importances are shown under a warning that their ranking
is unreliable (PED-ANOVA compares the best trials' parameters with all of them; a handful of
trials makes that comparison mostly noise)."""


def importance_warning(n_complete: int) -> str | None:
    """The report's warning for importances from ``n_complete`` complete trials, or ``None``
    from :data:`FEW_TRIALS_FOR_IMPORTANCE` trials on."""
    if n_complete >= FEW_TRIALS_FOR_IMPORTANCE:
        return None
    return (f"These importances come from only {n_complete} complete "
            f"trial{'s' if n_complete != 1 else ''}: with fewer than "
            f"{FEW_TRIALS_FOR_IMPORTANCE}, the ranking of the parameters is unreliable (a few "
            "more trials can reorder it). Read it as a hint, not as a result.")


def param_importances(study: optuna.Study, cfg: StudyConfig) -> dict[str, dict[str, float]]:
    """Parameter importances per objective: ``{metric: {param: importance}}``.

    Uses PED-ANOVA (:class:`optuna.importance.PedAnovaImportanceEvaluator`, Optuna's default
    since 5.0; no scikit-learn needed) on each objective in turn. PED-ANOVA measures what
    it takes to reach LOW target values, so maximised objectives are negated
    (``target=lambda t: -t.values[i]``); without that it would explain the worst trials.

    Raises:
        KdtuneError: fewer than :data:`MIN_TRIALS_FOR_IMPORTANCE` complete trials, no
            searched parameters, or Optuna could not evaluate them (the reason is given).
    """
    trials = complete_trials(study)
    if len(trials) < MIN_TRIALS_FOR_IMPORTANCE:
        raise KdtuneError(f"parameter importances need at least {MIN_TRIALS_FOR_IMPORTANCE} "
                          f"complete trials; the study has {len(trials)}")
    if not any(t.params for t in trials):
        raise KdtuneError("the study searches no parameters")
    out: dict[str, dict[str, float]] = {}
    for i, (name, direction) in enumerate(zip(cfg.objectives, cfg.directions, strict=True)):
        sign = -1.0 if direction == "maximize" else 1.0
        try:
            with warnings.catch_warnings():
                # "computes the importances of params to achieve low target values": handled
                # by the sign
                warnings.simplefilter("ignore")
                imp = optuna.importance.get_param_importances(
                    study,
                    evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                    target=lambda t, i=i, sign=sign: sign * t.values[i],
                )
        except Exception as e:  # evaluator limits differ by version; report, do not crash
            raise KdtuneError(f"parameter importances for {name} failed: "
                              f"{type(e).__name__}: {e}".splitlines()[0]) from e
        out[name] = {k: float(v) for k, v in imp.items()}
    return out


__all__ = ["FEW_TRIALS_FOR_IMPORTANCE", "MIN_TRIALS_FOR_IMPORTANCE", "importance_warning",
           "param_importances"]
