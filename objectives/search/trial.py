"""The one module of ``objectives`` that knows Optuna: trial -> parameters, metrics -> values.

:func:`suggest_config` samples a trial's parameters from the :class:`SearchSpace` and returns
the trial's complete :class:`DistillConfig`; :func:`make_objective` builds the function a
worker calls for each trial: suggest, distil, measure, record every metric in the trial's
user attributes, and return the configured objective values.

Why: docs/design.md, "Repeats are copied", "Threads per trial", "Trivial students are pruned",
"Over-cap trials are not trained", "Seed repeats run in full", "Early stopping by accuracy".
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from kdtune.attrs import (
    DUPLICATE_OF,
    EPOCHS_TRAINED,
    MAX_PARAMS_CONSTRAINT,
    PARAMS_CAP,
    REPEAT_SEED,
    SECONDS_PREFIX,
    THREADS,
    TRIAL_CONFIG,
    epoch_accuracy_key,
    rung_key,
    seconds_key,
)
from kdtune.storage.optuna_adapter import set_trial_user_attrs

from ..compute.device import available_cpus
from ..distillation.config import DistillConfig
from ..distillation.run import EarlyStopped, distill
from ..distillation.training import stages
from ..measure.catalogue import direction
from ..student.size import student_parameters
from .halving import HalvingConfig, decide
from .shapes import feasible_widths, parse_shape, size_facts, study_shapes
from .space import ChoiceParam, FloatParam, IntParam, SearchSpace


def _suggest(trial: optuna.Trial, name: str, spec):
    if isinstance(spec, FloatParam):
        return trial.suggest_float(name, spec.low, spec.high, log=spec.log)
    if isinstance(spec, IntParam):
        return trial.suggest_int(name, spec.low, spec.high)
    if isinstance(spec, ChoiceParam):
        return trial.suggest_categorical(name, list(spec.choices))
    raise TypeError(f"no sampling rule for {name}: {spec!r}")


def suggest_config(
    trial: optuna.Trial, base: DistillConfig, space: SearchSpace, teacher_layers: int,
    teacher_width: int | None = None, teacher_heads: int | None = None,
    widths: Sequence[int] | None = None, shapes: Sequence[str] | None = None,
) -> DistillConfig:
    """Sample the searched parameters and return the trial's complete DistillConfig.

    ``student_layers`` unset in the space (the default) is searched as an integer in 1..N-1
    for a teacher of N layers (ordered, unlike explicit ``choices``), unless
    ``search_student_layers`` is false. ``hidden_size`` unset
    is searched over :func:`~kdtune.objectives.student.size.auto_widths` of the teacher
    when its width (and head count) is given, unless ``search_hidden_size`` is false;
    ``widths`` replaces those automatic widths (:func:`.shapes.feasible_widths`). ``shapes``
    (:func:`.shapes.study_shapes`: the ``"<depth>x<width>"`` pairs under the size cap) replaces
    both: one categorical ``student_shape`` is drawn, so no trial is over the cap.

    ``beta`` is conditional: it weights the intermediate losses only in the ``joint``
    schedule. In ``two-stage`` the intermediate stage trains those losses alone, so beta's
    value has no effect (only beta > 0 switches the stage on): a two-stage trial does not
    sample it and runs with beta 1.0 (the base's beta when that is positive), so the sampler
    does not model a parameter that changes nothing. No intermediate losses named: beta is
    never sampled.
    """
    updates: dict = {}
    for name in ("temperature", "alpha", "layer_mapping", "learning_rate", "epochs",
                 "schedule"):
        spec = getattr(space, name)
        if spec is not None:
            updates[name] = _suggest(trial, name, spec)
    schedule = updates.get("schedule", base.schedule)
    if space.beta is not None and base.intermediate:
        if schedule == "joint":
            updates["beta"] = _suggest(trial, "beta", space.beta)
        else:
            updates["beta"] = base.beta if base.beta > 0 else 1.0
    depth_spec = space.student_layers
    if shapes:
        depth, width, ffn = parse_shape(str(_suggest(trial, "student_shape",
                                                     ChoiceParam(choices=tuple(shapes)))))
        updates.update(student_layers=depth, hidden_size=width)
        if ffn is not None or space.ffn_fractions:  # fraction 1: the teacher's ratio
            updates["ffn_size"] = ffn
        depth_spec, widths = None, ()
    elif depth_spec is None and space.search_student_layers and teacher_layers > 1:
        # An ordered integer, not a category: samplers can use "3 is between 2 and 4".
        depth_spec = IntParam(low=1, high=teacher_layers - 1)
    if depth_spec is not None:
        updates["student_layers"] = int(_suggest(trial, "student_layers", depth_spec))
    if not shapes and (widths is None or space.hidden_size is not None
                       or not space.search_hidden_size):
        widths = space.width_choices(teacher_width, teacher_heads)
    if widths:
        updates["hidden_size"] = int(_suggest(trial, "hidden_size", ChoiceParam(choices=widths)))
    data = base.model_dump()
    data.update(updates)
    return DistillConfig.model_validate(data)


def finished_twin(trial: optuna.Trial) -> FrozenTrial | None:
    """The earliest COMPLETE trial of ``trial``'s study with exactly its parameters, if any.

    Parameters compare by value and by distribution (a study whose search space changed
    between trials does not match old trials).
    """
    study = getattr(trial, "study", None)  # a FixedTrial has no study
    if study is None:
        return None
    params, dists = trial.params, trial.distributions
    for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if (other.number != trial.number and other.params == params
                and other.distributions == dists and other.values is not None):
            return other
    return None


def metric_values(metrics: dict, objectives: Sequence[str]) -> list[float]:
    """The objective values, in order; a missing or NaN metric is an error (trial FAILs)."""
    values = []
    for name in objectives:
        v = metrics.get(name)
        if v is None or not math.isfinite(float(v)):
            raise ValueError(
                f"objective {name!r} is {v!r} for this trial "
                f"(sigma needs at least two inputs that both models classify correctly)"
            )
        values.append(float(v))
    return values


def size_attrs(params: int, cap: int | None) -> dict:
    """The user attributes recording the student's parameter count (and the study's cap)."""
    return {"params": params} if cap is None else {"params": params, PARAMS_CAP: cap}


def check_size(trial: optuna.Trial, params: int, cap: int | None) -> None:
    """In a capped study, record the constraint ``params - cap``; an over-cap trial ends
    PRUNED here, untrained (module docstring). The count itself is recorded with the
    trial's config (:func:`size_attrs`), in the same database write."""
    if cap is None:
        return
    trial.set_constraint(MAX_PARAMS_CONSTRAINT, float(params - cap))
    if params > cap:
        raise optuna.TrialPruned(
            f"student has {params:,} parameters, over the cap of {cap:,} by "
            f"{params - cap:,} ({params / cap:.2f} x); not trained"
        )


def rung_check(trial: optuna.Trial, halving: HalvingConfig, objectives: Sequence[str],
               directions: Sequence[str]) -> Callable[[int, dict], None]:
    """The ``on_figures`` callback of a trial under successive halving
    (:mod:`kdtune.objectives.search.halving`): at a rung it stores the trial's objective values
    (``rung_<epochs>``: the values, ``params`` from the trial, objectives measured only at
    the end, such as latency, left out; and whether the student is trivial, no more accurate
    than the majority class) and raises :class:`EarlyStopped` unless the trial is
    among the best 1/eta recorded at that rung."""
    def check(epochs: int, figures: dict) -> None:
        if epochs not in halving.rungs:
            return
        known = {**figures, "params": trial.user_attrs.get("params")}
        used = [i for i, name in enumerate(objectives) if known.get(name) is not None]
        values = [float(known[objectives[i]]) for i in used]
        trivial = figures["accuracy_student"] <= figures["accuracy_majority"]
        trial.set_user_attr(rung_key(epochs), {"values": values, "trivial": bool(trivial)})
        records = [t.user_attrs.get(rung_key(epochs)) for t in trial.study.get_trials(
            deepcopy=False) if t.number != trial.number]
        records = [r for r in records if isinstance(r, dict) and len(r["values"]) == len(used)]
        records.append({"values": values, "trivial": bool(trivial)})
        keep, place, kept = decide([r["values"] for r in records], len(records) - 1,
                                   [directions[i] for i in used], halving.eta,
                                   [r["trivial"] for r in records], halving.min_trials)
        if not keep:
            raise EarlyStopped(
                f"successive halving: after {epochs} epoch(s) the trial ranks {place} of "
                f"{len(records)} by non-dominated sorting"
                f"{' (no better than the majority class: ranked last)' if trivial else ''}; "
                f"only the best {kept} continue")

    return check


def make_objective(
    base: DistillConfig, space: SearchSpace, objectives: Sequence[str],
    run: Callable[..., object] = distill, threads: int | None = None,
) -> Callable[[optuna.Trial], list[float]]:
    """The objective a worker runs for each trial of a kdtune study.

    Args:
        base: the study's distillation config; each trial overrides the searched keys.
        space: what is searched, and whether repeated configurations are reused.
        objectives: the metric names whose values the objective returns, in order.
        run: the distillation, called as ``run(cfg, on_epoch=..., threads=threads)`` (and
            ``on_figures=`` under successive halving, :func:`rung_check`).
        threads: torch threads for a trial whose config leaves ``threads`` unset (the
            worker's share of the machine); ``None`` uses every available core.
    """
    facts = size_facts(base, space)
    depth, t_cfg, cap, vocab_size = facts
    shape = (int(t_cfg.hidden_size), int(t_cfg.num_attention_heads))
    shapes = study_shapes(base, space, objectives, facts)
    widths = feasible_widths(space, t_cfg, depth, cap, base.student_layers, vocab_size,
                             base.ffn_size)
    directions = [direction(name) for name in objectives]

    def objective(trial: optuna.Trial) -> list[float]:
        cfg = suggest_config(trial, base, space, depth, *shape, widths=widths, shapes=shapes)
        repeat_seed = trial.user_attrs.get(REPEAT_SEED)  # kdtune rescore's repeats
        if repeat_seed is not None:
            cfg = cfg.model_copy(update={"seed": int(repeat_seed)})
        config = json.loads(cfg.model_dump_json())
        params = student_parameters(t_cfg, cfg.student_layers, cfg.hidden_size,
                                    vocab_size if cfg.vocabulary == "task" else None,
                                    cfg.ffn_size)
        # torch threads change the floating point of training, hence the student: recorded
        # so `kdtune export` can pin them and `kdtune distill` reproduces the trial
        set_trial_user_attrs(trial, {TRIAL_CONFIG: config,
                                     THREADS: cfg.threads or threads or available_cpus(),
                                     **size_attrs(params, cap)})
        check_size(trial, params, cap)
        twin = finished_twin(trial) if space.reuse_repeats and repeat_seed is None else None
        if twin is not None and twin.user_attrs.get(TRIAL_CONFIG) == config:
            # Same parameters and same full configuration: the result would be the same.
            copied = {key: value for key, value in twin.user_attrs.items()
                      if not key.startswith(SECONDS_PREFIX)
                      and key not in (DUPLICATE_OF, EPOCHS_TRAINED)}
            set_trial_user_attrs(trial, {**copied, DUPLICATE_OF: twin.number})
            return list(twin.values)

        last_epoch = sum(stage.epochs for stage in stages(cfg))
        pending: dict = {}  # the last epoch's figures, written with the metrics

        def on_epoch(epoch: int, acc: float) -> None:
            # ``epoch`` counts every epoch trained so far, intermediate-stage ones included
            attrs = {epoch_accuracy_key(epoch): acc, EPOCHS_TRAINED: epoch}
            if epoch == last_epoch:  # the metrics follow within the final evaluation
                pending.update(attrs)
            else:  # seen at once by the other workers' epoch budget and by the dashboard
                set_trial_user_attrs(trial, attrs)

        halving = {} if space.halving is None or repeat_seed is not None else {
            "on_figures": rung_check(trial, space.halving, objectives, directions)}
        try:
            result = run(cfg, on_epoch=on_epoch, threads=threads, **halving)
        except EarlyStopped as e:
            set_trial_user_attrs(trial, pending)
            raise optuna.TrialPruned(str(e)) from e
        except Exception:
            # Diverged and the rest propagate (the worker fails the trial with its reason;
            # Diverged.retryable is False, so it is not re-queued); what was trained counts
            with contextlib.suppress(Exception):
                set_trial_user_attrs(trial, pending)
            raise
        # one transaction for the last epoch and the ~35 metrics and timings
        set_trial_user_attrs(trial, {**pending, **result.metrics, **{
            seconds_key(key): value for key, value in result.timings.items()}})
        acc, majority = result.metrics["accuracy_student"], result.metrics["accuracy_majority"]
        low = (result.metrics.get("accuracy_student_ci") or [acc])[0]
        if low <= majority:
            raise optuna.TrialPruned(
                f"student accuracy {acc:.4f} (95% interval from {low:.4f}) is no better than "
                f"always predicting the most common label ({majority:.4f})"
            )
        return metric_values(result.metrics, objectives)

    return objective
