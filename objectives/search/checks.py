"""Checks of a config against what it names: the teacher checkpoint and the data source.

:func:`check_distill`, :func:`check_teacher`, :func:`check_data` and :func:`check_teacher_fit`
each return a list of problems, one line each, starting with the key path it is about
(``distill.teacher: ...``, ``distill.data.label_column: ...``); an empty list means all is
well. :func:`teacher_facts` reads a teacher's config and tokenizer (:class:`TeacherFacts`).

Why: docs/design.md, "Config checks read the world, write nothing".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdtune.errors import UsageError

from ..data.dataset import DataConfig, Splits, check_labels_match, load_splits
from ..distillation.config import DistillConfig
from ..measure.protocol import describe_protocol, protocol_problems
from ..oneline import one_line
from ..student.size import student_parameters, teacher_parameters
from ..student.vocabulary import tokenizer_kind
from ..teacher.base import resolve_base
from ..teacher.progress import library_progress
from ..teacher.source import checkpoint_source
from .space import SearchSpace
from .space_checks import search_problems

__all__ = [
    "TeacherFacts",
    "check_data",
    "check_distill",
    "check_teacher",
    "check_teacher_fit",
    "teacher_facts",
]

_REQUIRED = ("num_hidden_layers", "hidden_size", "num_attention_heads")


@dataclass(frozen=True)
class TeacherFacts:
    """What a config check needs to know about a teacher (read from its config file)."""

    layers: int
    hidden_size: int
    heads: int
    label_names: tuple[str, ...]
    config: Any = None
    tokenizer_kind: str = "WordPiece"


def teacher_facts(teacher: str, *, classifier: bool = True) -> TeacherFacts:
    """Read a teacher's (or base checkpoint's) config and tokenizer, not its weights.

    Args:
        teacher: a checkpoint directory or a hub model id.
        classifier: require a ``...ForSequenceClassification`` architecture (a distillation
            teacher); false for the base checkpoint ``kdtune teacher fit`` starts from.

    Raises:
        ValueError: one line: no such directory (see
            :func:`~kdtune.objectives.teacher.source.checkpoint_source`), not loadable,
            not a sequence classifier, not BERT-like, or no tokenizer.
    """
    from transformers import AutoConfig, AutoTokenizer

    try:
        source = checkpoint_source(teacher)
    except UsageError as e:
        raise UsageError(f"{teacher!r}: {e}") from e
    local = Path(teacher).expanduser().exists()
    kind = "local checkpoint" if local else "hub model id (or local directory)"
    try:
        with library_progress(False):
            config = AutoConfig.from_pretrained(source)
    except Exception as e:  # noqa: BLE001 - OSError, ValueError, hub errors alike
        raise ValueError(f"could not load {teacher!r} as a {kind}: {one_line(e)}") from e
    architectures = list(getattr(config, "architectures", None) or [])
    if classifier and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ValueError(
            f"{teacher!r} is not a sequence classifier (architectures: "
            f"{', '.join(architectures) or 'none'}); fine-tune one with `kdtune teacher fit`"
        )
    missing = [name for name in _REQUIRED if not hasattr(config, name)]
    if missing:
        raise ValueError(f"{teacher!r} is not BERT-like: its config lacks {', '.join(missing)}")
    try:
        with library_progress(False):
            tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as e:  # noqa: BLE001 - missing or unreadable tokenizer files
        raise ValueError(f"{teacher!r} has no loadable tokenizer: {one_line(e)}") from e
    id2label = getattr(config, "id2label", None) or {}
    return TeacherFacts(
        layers=int(config.num_hidden_layers),
        hidden_size=int(config.hidden_size),
        heads=int(config.num_attention_heads),
        label_names=tuple(str(id2label[k]) for k in sorted(id2label, key=int)),
        config=config,
        tokenizer_kind=tokenizer_kind(tokenizer),
    )


def check_teacher(teacher: str, key: str = "distill.teacher") -> list[str]:
    """Problems with a distillation teacher: it must load as a sequence classifier."""
    try:
        teacher_facts(teacher)
    except ValueError as e:
        return [f"{key}: {e}"]
    return []


def check_data(data: DataConfig, key: str = "distill.data") -> list[str]:
    """Problems with a data source: it must exist, with the named columns and two classes."""
    return _load_splits(data, key)[1]


def check_distill(
    cfg: DistillConfig,
    key: str = "distill",
    space: SearchSpace | None = None,
    space_key: str = "search",
) -> list[str]:
    """Every problem of a distillation config (and of the search over it) beyond pydantic's.

    The teacher and the data (:func:`check_teacher`, :func:`check_data`), that the data's
    labels are the teacher's, the cross-field rules of
    :func:`~kdtune.objectives.search.space_checks.search_problems` with the teacher's depth,
    the student
    width against the teacher's, a size cap that the smallest student of the space can
    meet, the reference class against the classes, the checkpoint ``init: checkpoint``
    names, and the split protocol (:func:`~kdtune.objectives.measure.protocol.protocol_problems`:
    no selection or test row in the teacher's training data or the transfer data).
    """
    at = (lambda name: f"{key}.{name}") if key else (lambda name: name)
    problems: list[str] = []
    try:
        facts = teacher_facts(cfg.teacher)
    except ValueError as e:
        facts = None
        problems.append(f"{at('teacher')}: {e}")
    splits, data_problems = _load_splits(cfg.data, at("data"))
    labels = splits.label_names if splits is not None else None
    problems += data_problems
    if splits is not None and facts is not None:
        problems += protocol_problems(
            describe_protocol(cfg.data, splits, cfg.teacher), at("data"))
    if facts is not None and labels is not None:
        try:
            check_labels_match(labels, facts.label_names)
        except ValueError as e:
            problems.append(f"{at('data.label_column')}: {e}")
    depth = facts.layers if facts is not None else None
    problems += search_problems(cfg, space, depth, base_key=key, space_key=space_key)
    if facts is not None and cfg.vocabulary == "task" and facts.tokenizer_kind != "WordPiece":
        problems.append(f"{at('vocabulary')}: 'task' needs a WordPiece tokenizer; the "
                        f"teacher's is {facts.tokenizer_kind} (use vocabulary: full)")
    if facts is not None:
        problems += _width_problems(cfg, facts, at, space, space_key)
        problems += _cap_problems(cfg, facts, space, space_key)
    problems += _halving_problems(cfg, space, space_key)
    classes = len(labels) if labels is not None else (
        len(facts.label_names) if facts is not None else None)
    if classes is not None and cfg.eval.reference_class >= classes:
        problems.append(f"{at('eval.reference_class')}: class {cfg.eval.reference_class} "
                        f"does not exist; accepted: 0..{classes - 1} ({classes} classes)")
    if cfg.init == "checkpoint" and cfg.init_checkpoint \
            and not Path(cfg.init_checkpoint).expanduser().is_dir():
        problems.append(f"{at('init_checkpoint')}: no such student directory "
                        f"{cfg.init_checkpoint!r}")
    return problems


def _width_problems(cfg: DistillConfig, facts: TeacherFacts, at, space: SearchSpace | None,
                    space_key: str) -> list[str]:
    """Widths (or a feed-forward size) above the teacher's with ``init: teacher-layers`` (it
    selects teacher weights)."""
    if cfg.init != "teacher-layers":
        return []
    problems = []
    width = cfg.hidden_size
    if width is not None and width > facts.hidden_size:
        problems.append(
            f"{at('hidden_size')}: init 'teacher-layers' selects teacher weights, which needs "
            f"a width up to the teacher's width {facts.hidden_size}, got {width}; use init: "
            "random (or checkpoint) for a wider student")
    t_ffn = getattr(facts.config, "intermediate_size", None)
    if cfg.ffn_size is not None and t_ffn is not None and cfg.ffn_size > int(t_ffn):
        problems.append(
            f"{at('ffn_size')}: init 'teacher-layers' selects teacher weights, which needs a "
            f"feed-forward size up to the teacher's {int(t_ffn)}, got {cfg.ffn_size}")
    widths = space.width_choices(facts.hidden_size, facts.heads) if space else None
    wider = [w for w in widths or () if w > facts.hidden_size]
    if wider:
        problems.append(
            f"{space_key}.hidden_size: {wider[0]} is wider than the teacher ({facts.hidden_size})"
            f"; init 'teacher-layers' needs widths up to the teacher's")
    return problems


def _halving_problems(cfg: DistillConfig, space: SearchSpace | None,
                      space_key: str) -> list[str]:
    """Successive halving makes epochs the fidelity: not searched, and enough to reach the
    rungs."""
    if space is None or space.halving is None:
        return []
    problems = []
    if space.epochs is not None:
        problems.append(f"{space_key}.epochs: with {space_key}.halving, epochs are the "
                        "fidelity, not a searched value: set it to null and distill.epochs "
                        "to the last rung or beyond")
    last = space.halving.rungs[-1]
    if cfg.epochs < last:
        problems.append(f"{space_key}.halving.rungs: the last rung ({last} epochs) is beyond "
                        f"distill.epochs ({cfg.epochs}); no trial would reach it")
    return problems


def _cap_problems(cfg: DistillConfig, facts: TeacherFacts, space: SearchSpace | None,
                  space_key: str) -> list[str]:
    """A size cap that even the smallest student trials can draw is over: every trial would
    be pruned untrained."""
    if space is None or facts.config is None:
        return []
    cap = space.params_cap(teacher_parameters(facts.config))
    if cap is None:
        return []
    depth = min(space.depth_choices(facts.layers) or (cfg.student_layers,))
    width = min(space.width_choices(facts.hidden_size, facts.heads)
                or (cfg.hidden_size or facts.hidden_size,))
    ffn = space.ffn_choices(facts.config, width, cfg.ffn_size)[-1]  # the narrowest block
    smallest = student_parameters(facts.config, depth, width, None, ffn)
    if smallest > cap and cfg.vocabulary == "task" and facts.tokenizer_kind == "WordPiece":
        # the task vocabulary's size is known once the students' text is tokenised
        from ..distillation.prepare import kept_vocabulary_size

        try:
            with library_progress(False):
                kept = kept_vocabulary_size(cfg)
            smallest = student_parameters(facts.config, depth, width, kept, ffn)
        except (ValueError, OSError):
            pass  # the data or teacher problem is reported by its own check
    if smallest <= cap:
        return []
    key = "max_params" if space.max_params is not None else "max_params_ratio"
    return [f"{space_key}.{key}: the cap of {cap:,} parameters is below the smallest student "
            f"the search can draw ({depth} layer(s), width {width}: {smallest:,}); every "
            "trial would be pruned: raise the cap or allow fewer layers or a narrower width"]


def _load_splits(data: DataConfig, key: str) -> tuple[Splits | None, list[str]]:
    """The data's splits, or None and the problem, named by the key it is about."""
    try:
        with library_progress(False):
            return load_splits(data), []
    except ValueError as e:
        return None, [f"{key}.{_data_key(str(e), data)}: {e}"]


def _data_key(message: str, data: DataConfig) -> str:
    """Which key of a DataConfig a data problem is about (``source`` when no other)."""
    if "is not UTF-8 text" in message or message.startswith("cannot read "):
        return "source"  # the file itself, whatever its name says
    before = message.split(" not found", 1)[0] if " not found" in message else ""
    if repr(data.label_column) in before:
        return "label_column"
    if any(repr(c) in before for c in data.text_columns):
        return "text_columns"
    for size in ("train_size", "eval_size", "test_size", "transfer_size"):
        if f"{size.removesuffix('_size')}_size=" in message:
            return size
    if "split sizes" in message:
        return "train_size"
    if "has no split" in message:
        return "train_split"
    if "label" in message or "class" in message:
        return "label_column"
    if "text" in message:
        return "text_columns"
    return "source"


def check_teacher_fit(base: str, data: DataConfig) -> list[str]:
    """Problems of a ``kdtune teacher fit`` config: its base checkpoint and its data."""
    problems = []
    try:
        teacher_facts(resolve_base(base), classifier=False)
    except ValueError as e:
        problems.append(f"base: {e}")
    if data.transfer.enabled:
        problems.append("data.transfer: a teacher trains on labelled data only; transfer "
                        "text is for the students (set it in the study's distill.data)")
    return problems + check_data(data, "data")
