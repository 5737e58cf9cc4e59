"""The evaluation protocol of a study: four disjoint splits, recorded and checked.

The splits: **teacher train** (the rows the teacher was fitted on), **transfer** (the rows
students learn on), **selection** (the ``eval`` split trials measure) and **test** (read only
after the search). :func:`describe_protocol` measures the splits and their overlaps (rows
compared by their text, and text pair); :func:`protocol_problems` turns the overlaps that break
the protocol into config problems: a selection or test row the teacher trained on, a transfer
row in the selection or test split, or a transfer split (``transfer_size``) the teacher trained
on. Why: docs/design.md, "Four disjoint splits", "Students may learn on the teacher's rows".
"""

from __future__ import annotations

from typing import Any

from kdtune.errors import KdtuneError

from ..data.dataset import DataConfig, Splits, load_splits

__all__ = ["PROTOCOL_VERSION", "describe_protocol", "protocol_problems", "teacher_train_split"]

PROTOCOL_VERSION = 1
_FORBIDDEN = (("teacher_train", "selection"), ("teacher_train", "test"),
              ("transfer", "selection"), ("transfer", "test"), ("selection", "test"))
"""Pairs of splits that must not share a row."""


_SOURCE_KEYS = ("source", "config_name", "text_columns", "label_column", "train_split",
                "eval_split", "test_split")
"""Data config keys that name the same rows: equal ones make row indices comparable."""


def _texts(ds) -> set[tuple[str, ...]]:
    columns = [c for c in ("text", "text_pair") if c in ds.column_names]
    return set(zip(*(ds[c] for c in columns), strict=True))


def _ids(splits: Splits, name: str) -> set[tuple[str, int]]:
    part, idx = splits.row_ids[name]
    return {(part, int(i)) for i in idx}


def _same_source(a: DataConfig, b: DataConfig) -> bool:
    return all(getattr(a, k) == getattr(b, k) for k in _SOURCE_KEYS)


def teacher_train_split(teacher: str) -> tuple[Splits | None, dict[str, Any]]:
    """The teacher's splits rebuilt from its ``kdtune_teacher.json`` (``None`` when unknown).

    Returns ``(splits or None, facts)``; ``facts`` says where the training split came from
    (``known``, the teacher's data config and train fingerprint, or the reason it is
    unknown). The rebuilt train split must match the recorded fingerprint.
    """
    from ..teacher.load import read_teacher_metadata

    try:
        meta = read_teacher_metadata(teacher)
    except KdtuneError:
        return None, {"known": False, "reason": "not fitted by kdtune teacher fit"}
    data = meta.get("data")
    recorded = (meta.get("fingerprints") or {}).get("train")
    if not isinstance(data, dict) or not recorded:
        return None, {"known": False, "reason": "kdtune_teacher.json has no data config"}
    try:
        splits = load_splits(DataConfig(**data))
    except (ValueError, TypeError) as e:
        return None, {"known": False, "reason": f"its data does not load: {e}"}
    if splits.fingerprint("train") != recorded:
        return None, {"known": False, "reason": "its data no longer matches the recorded "
                      "fingerprint (the source changed)"}
    return splits, {"known": True, "data": data, "fingerprint": recorded}


def describe_protocol(data: DataConfig, splits: Splits, teacher: str,
                      transfer: Any = None) -> dict[str, Any]:
    """The study's four splits: rows, fingerprints, seed and pairwise row overlaps.

    Args:
        data: the study's data config (its seed and sizes are recorded).
        splits: ``load_splits(data)``.
        teacher: the teacher directory or hub id.
        transfer: the students' full transfer set when it has unlabelled or augmented rows
            (default: the labelled students' split alone).
    """
    which = getattr(data, "students", "transfer")
    labelled = splits.students_rows(which)
    students = transfer if transfer is not None else labelled
    students_split = ("train+transfer" if labelled is not splits.students
                      else splits.students_split)
    teacher_splits, teacher_facts = teacher_train_split(teacher)
    # Row identity where every split comes from one source (duplicate sentences in the
    # source are not leaks); the text itself otherwise, and for unlabelled/augmented rows.
    texts = {"transfer": _texts(students), "selection": _texts(splits.eval),
             "test": _texts(splits.test)}
    ids = {"transfer": set().union(*(_ids(splits, name) for name in students_split.split("+"))),
           "selection": _ids(splits, "eval"),
           "test": _ids(splits, "test")}
    if teacher_splits is not None:
        texts["teacher_train"] = _texts(teacher_splits.train)
        if _same_source(DataConfig(**teacher_facts["data"]), data):
            ids["teacher_train"] = _ids(teacher_splits, "train")
    overlaps = {}
    for a, b in (*_FORBIDDEN, ("teacher_train", "transfer")):
        if a in texts and b in texts:
            same = a in ids and b in ids
            overlaps[f"{a}&{b}"] = len(ids[a] & ids[b]) if same else len(texts[a] & texts[b])
    labels = list(students["label"])
    return {
        "version": PROTOCOL_VERSION,
        "seed": data.seed,
        "students_split": students_split,
        "splits": {
            "teacher_train": {**teacher_facts, "rows": len(teacher_splits.train)
                              if teacher_splits is not None else None},
            "transfer": {"rows": len(students),
                         "labelled": sum(1 for y in labels if y >= 0),
                         "fingerprint_labelled": splits.students_fingerprint(which)},
            "selection": {"rows": len(splits.eval), "fingerprint": splits.fingerprint("eval")},
            "test": {"rows": len(splits.test), "fingerprint": splits.fingerprint("test")},
        },
        "overlaps": overlaps,
    }


def protocol_problems(protocol: dict[str, Any], key: str = "distill.data") -> list[str]:
    """One line per overlap that breaks the protocol (see the module docstring)."""
    problems = []
    asked = protocol["overlaps"].get("teacher_train&transfer", 0)
    if protocol["students_split"] == "transfer" and asked:
        problems.append(f"{key}.transfer_size: {asked} row(s) of the transfer split are in the "
                        "teacher's training data (fit the teacher with the same transfer_size)")
    for a, b in _FORBIDDEN:
        shared = protocol["overlaps"].get(f"{a}&{b}", 0)
        if shared:
            hint = (" (fit the teacher with this data config's source, seed, eval_size, "
                    "test_size and transfer_size)" if a == "teacher_train" else "")
            problems.append(f"{key}: {shared} row(s) of the {b} split are also in the "
                            f"{a.replace('_', ' ')} data{hint}")
    return problems
