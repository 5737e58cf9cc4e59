"""Studies: create them, open them, report their status.

Entry points: :func:`create_study`, :func:`open_study`, :func:`study_status`. A study stores
its whole :class:`~kdtune.study.config.StudyConfig` (without the storage URL) as the study
user attribute :data:`kdtune.attrs.STUDY_CONFIG`; local workers are :mod:`kdtune.study.local`'s,
the budget :mod:`kdtune.study.budget`'s, the Pareto front :mod:`kdtune.study.front`'s.

Why: docs/design.md, "Config stored with the study".
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import optuna

from kdtune import __version__
from kdtune.attrs import PROTOCOL, STUDY_CONFIG, STUDY_STOPPED, STUDY_VERSION
from kdtune.errors import KdtuneError, StudyNotFound, UsageError
from kdtune.frozen import apply_overrides, dump_yaml
from kdtune.objectives.measure import catalogue
from kdtune.objectives.search.warm_start import warm_start_params
from kdtune.storage import (
    StorageSettings,
    database_errors,
    describe,
    make_storage,
)

from .budget import budget_counts, epochs_trained_db, pace, study_state
from .config import StudyConfig, config_from_json, load_config, validate
from .front import best_values, pareto_front

SAMPLERS = ("nsga2", "tpe", "random", "gp")
"""The sampler names :func:`build_sampler` accepts."""
_log = logging.getLogger(__name__)


def load_study_config(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    storage: str | None = None,
    n_trials: int | None = None,
) -> StudyConfig:
    """Load a study config; ``storage`` and ``n_trials`` (CLI flags) win over the file."""
    extra = list(overrides)
    cfg = load_config(path, extra)
    if storage is None and n_trials is None:
        return cfg
    raw = json.loads(cfg.model_dump_json())
    if storage is not None:
        raw["storage"] = storage
    if n_trials is not None:
        raw["n_trials"] = n_trials
    return validate(apply_overrides(raw, []))


def sampler_seed(seed: int, worker_index: int) -> int:
    """Worker ``worker_index``'s sampler seed in a study seeded ``seed``: 32 bits drawn from
    NumPy's ``SeedSequence([seed, worker_index])``.

    Reseeding per worker matters (workers sharing one seed would suggest identical
    parameters in parallel), and hashing matters too: with ``seed + worker_index``, study
    seed 1's first worker replayed study seed 0's second worker's stream.
    """
    return int(np.random.SeedSequence([seed, worker_index]).generate_state(1)[0])


def build_sampler(cfg: StudyConfig, worker_index: int = 0) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded with :func:`sampler_seed` of the study's seed and
    ``worker_index`` (unseeded when the study's seed is null)."""
    s = cfg.sampler
    seed = None if s.seed is None else sampler_seed(s.seed, worker_index)
    if s.name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=s.population_size, seed=seed)
    if s.name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=s.n_startup_trials, multivariate=True, constant_liar=True
        )
    if s.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=s.n_startup_trials)
    raise UsageError(f"sampler.name {s.name!r} is not one of {', '.join(SAMPLERS)}")


def storage_settings(cfg: StudyConfig | None, *, create_schema: bool) -> StorageSettings:
    """Connection settings: the config's heartbeats and retries (none without a config)."""
    if cfg is None:
        return StorageSettings(create_schema=create_schema)
    return StorageSettings(
        heartbeat_interval=cfg.heartbeat_interval,
        grace_period=cfg.grace_period or 3 * cfg.heartbeat_interval,
        max_retry=cfg.max_retries,
        create_schema=create_schema,
    )


def create_study(cfg: StudyConfig) -> dict:
    """Create the study (schema included) or open it if it exists; store the config.

    Repeating it is safe (``load_if_exists``). A study that exists with a different config
    keeps its stored config, and a warning says so: a study's search space must not change
    under running workers.

    Raises:
        StorageError: the storage cannot be reached or used.
        KdtuneError: the study exists with other directions.
    """
    storage = make_storage(cfg.storage, storage_settings(cfg, create_schema=True))
    with database_errors(f"creating study {cfg.name!r}"):
        return _create(storage, cfg)


def _create(storage: optuna.storages.BaseStorage, cfg: StudyConfig) -> dict:
    study = optuna.create_study(
        storage=storage,
        study_name=cfg.name,
        directions=cfg.directions,
        sampler=build_sampler(cfg),
        load_if_exists=True,
    )
    if [d.name.lower() for d in study.directions] != cfg.directions:
        raise KdtuneError(
            f"study {cfg.name!r} exists with directions "
            f"{[d.name.lower() for d in study.directions]}, not {cfg.directions}"
        )
    # The stored config never carries the storage URL: it may hold a password, and the
    # dashboard (no authentication) shows study attributes. Workers are told the storage.
    public = json.loads(cfg.model_copy(update={"storage": None}).model_dump_json())
    stored = study.user_attrs.get(STUDY_CONFIG)
    if stored is None:
        study.set_metric_names(metric_names(cfg.objectives))
        study.set_user_attr(STUDY_CONFIG, public)
        study.set_user_attr(STUDY_VERSION, __version__)
        study.set_user_attr(PROTOCOL, _protocol(cfg))
        shapes = _warm_start_shapes(cfg) if cfg.search.warm_start else None
        for params in warm_start_params(cfg.search, shapes):  # tried first, once
            study.enqueue_trial(params, skip_if_exists=True)
        _save_note(study, cfg.model_copy(update={"storage": None}))
    elif stored != public:
        _log.warning("study %r exists with a different config; keeping the stored one", cfg.name)
    return {
        "study": cfg.name,
        "storage": describe(cfg.storage),
        "objectives": list(cfg.objectives),
        "directions": cfg.directions,
        "trials": len(study.get_trials(deepcopy=False)),
        "n_trials": cfg.n_trials,
    }


def _warm_start_shapes(cfg: StudyConfig) -> tuple[str, ...] | None:
    """The largest student shapes the study's trials draw, at each of which a warm-start
    entry naming no shape is tried; None when shapes are not drawn or the teacher cannot be
    read here (a worker reports that teacher problem with the trial)."""
    from kdtune.objectives.search.shapes import largest_shapes, size_facts, study_shapes

    try:
        facts = size_facts(cfg.distill, cfg.search)
        shapes = study_shapes(cfg.distill, cfg.search, (), facts)
        # uncapped, study_shapes keeps every shape: the warm start still takes the largest
        return largest_shapes(shapes, facts[1], cfg.distill.ffn_size) if shapes else None
    except (KdtuneError, OSError, ValueError):
        return None


def _protocol(cfg: StudyConfig) -> dict:
    """The split protocol recorded with the study (or why it could not be measured)."""
    from kdtune.objectives.data.dataset import load_splits
    from kdtune.objectives.measure.protocol import describe_protocol

    data = cfg.distill.data
    try:
        return {**describe_protocol(data, load_splits(data), cfg.distill.teacher),
                "transfer_config": data.model_dump(mode="json").get("transfer")}
    except ValueError as e:
        return {"error": str(e)}


def metric_names(objectives: list[str] | tuple[str, ...]) -> list[str]:
    """The objectives' names as the metric catalogue has them (optuna-dashboard's labels).

    Raises:
        UsageError: a name is not an objective in :mod:`kdtune.objectives.measure.catalogue`.
    """
    unknown = [name for name in objectives if name not in catalogue.OBJECTIVES]
    if unknown:
        raise UsageError(f"unknown objective {unknown[0]!r}; accepted: "
                         f"{', '.join(catalogue.OBJECTIVES)}")
    return [catalogue.METRICS[name].name for name in objectives]


def _save_note(study: optuna.Study, cfg: StudyConfig) -> None:
    """Show the objectives and the config on the dashboard's study page (a note)."""
    from optuna_dashboard import save_note

    meanings = "".join(f"- `{m}` ({d}): {catalogue.meaning(m)}\n"
                       for m, d in zip(cfg.objectives, cfg.directions, strict=True))
    save_note(study, f"# kdtune study `{cfg.name}`\n\nObjectives:\n\n{meanings}\n"
                     f"Config:\n\n```yaml\n{dump_yaml(cfg)}```\n")


def open_study(
    name: str, storage: str | None, *, heartbeat: bool = False, worker_index: int = 0
) -> tuple[optuna.Study, StudyConfig]:
    """Open an existing kdtune study and its stored config.

    With ``heartbeat`` the storage records heartbeats and re-queues trials of dead workers;
    the schema is never created here (that is ``create``'s job).

    Raises:
        StudyNotFound: no study of that name (the message lists the studies there).
        KdtuneError: the study was not created by kdtune.
        StorageError: the storage cannot be reached or used.
    """
    if no_storage_yet(storage):  # a read never creates storage (nor starts a server)
        raise StudyNotFound(f"no study named {name!r} (no studies yet in {describe(storage)})")
    plain = make_storage(storage, StorageSettings(create_schema=False))
    with database_errors(f"opening study {name!r} in {describe(storage)}"):
        raw = _stored_config(plain, name, storage)
        cfg = config_from_json(json.dumps(raw))
        settings = storage_settings(cfg if heartbeat else None, create_schema=False)
        st = make_storage(storage, settings) if heartbeat else plain
        study = optuna.load_study(study_name=name, storage=st,
                                  sampler=build_sampler(cfg, worker_index))
    return study, cfg


def no_storage_yet(storage: str | None) -> bool:
    """Whether ``storage`` does not exist yet: the embedded server without a data directory,
    or a SQLite file that is not there (opening it would create it)."""
    from sqlalchemy.engine import make_url

    from kdtune.storage import embedded, resolve_spec

    spec = resolve_spec(storage)
    if spec.kind == "embedded":
        return embedded.data_version() is None
    if spec.kind == "sqlite":
        database = make_url(spec.url).database
        return bool(database) and database != ":memory:" and not Path(database).exists()
    return False


def _stored_config(plain: optuna.storages.BaseStorage, name: str, storage: str | None) -> dict:
    """The config stored in study ``name``; StudyNotFound when there is no such study."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        sid = plain.get_study_id_from_name(name)
    except KeyError as e:
        names = [s.study_name for s in plain.get_all_studies()]
        shown = ", ".join(names[:10]) if names else "none"
        raise StudyNotFound(
            f"no study named {name!r} in {describe(storage)}; studies there: {shown}"
        ) from e
    except (OperationalError, ProgrammingError) as e:  # an empty database has no tables yet
        if "does not exist" in str(e) or "no such table" in str(e):
            raise StudyNotFound(
                f"no study named {name!r} in {describe(storage)} (no kdtune studies there yet)"
            ) from e
        raise
    raw = plain.get_study_user_attrs(sid).get(STUDY_CONFIG)
    if raw is None:
        raise KdtuneError(f"study {name!r} was not created by kdtune (no stored config)")
    return raw


def study_status(name: str, storage: str | None) -> dict:
    """Where a study stands: its state, trial counts against the budget, time elapsed and
    left at its pace so far, each objective's best value and the Pareto front size.

    ``objectives`` and ``directions`` are lists. A study that stopped itself (its first
    trials all failed with one error) also has ``stopped``: the reason, as the workers
    printed it.
    """
    study, cfg = open_study(name, storage)
    with database_errors(f"reading study {name!r}"):
        trials = study.get_trials(deepcopy=False)
        counts = budget_counts(trials)
        front = pareto_front(study) if counts["complete"] else []
    stopped = study.user_attrs.get(STUDY_STOPPED)
    return {
        "study": name,
        "storage": describe(storage if storage is not None else cfg.storage),
        "state": study_state(counts, cfg.n_trials, bool(stopped)),
        "objectives": list(cfg.objectives),
        "directions": cfg.directions,
        "budget": cfg.n_trials,
        **counts,
        **({"epoch_budget": cfg.epoch_budget, "epochs_trained": epochs_trained_db(study)}
           if cfg.epoch_budget is not None else {}),
        **pace(trials, counts, cfg.n_trials),
        "best": best_values(trials, cfg),
        "pareto_front": len(front),
        **({"stopped": stopped} if stopped else {}),
    }
