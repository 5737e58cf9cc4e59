"""Reading a data source into named raw splits: the built-in corpus, local files, the Hub.

:func:`read_source` turns a :class:`~kdtune.objectives.data.dataset.DataConfig`'s ``source`` into
``{split name: datasets.Dataset}`` with the source's own columns, plus a short description
of the source for error messages: ``"polarity"`` (one split), a local
``.csv``/``.json``/``.jsonl``/``.parquet`` file (one split) or a directory of them, or else a
Hugging Face Hub dataset id. Splitting comes later (:mod:`kdtune.objectives.data.splitting`);
problems raise :class:`~kdtune.errors.DataError`. Why: docs/design.md, "Reading data sources".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kdtune.errors import DataError

from ..oneline import one_line
from .polarity import polarity_dataset

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

__all__ = ["BUILTIN_SOURCES", "LOCAL_SUFFIXES", "pool_split_name", "read_source"]

BUILTIN_SOURCES = ("polarity",)
LOCAL_SUFFIXES = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def read_source(
    source: str, config_name: str | None, split_names: Sequence[str]
) -> tuple[dict[str, Dataset], str]:
    """Return the source's splits by name and a short description for error messages.

    Args:
        source: ``"polarity"``, a local file or directory, or a hub dataset id.
        config_name: the hub dataset's configuration, if any.
        split_names: the train, evaluation and test split names (a directory's files named
            after them are those splits).

    Raises:
        DataError: the source cannot be found, read or reached (one line).
    """
    if source == "polarity":
        try:
            return {"train": polarity_dataset()}, "polarity"
        except (RuntimeError, ValueError) as e:
            raise DataError(f"built-in dataset 'polarity' unavailable: {e}") from e
    path = Path(source).expanduser()
    if path.exists() or _looks_like_path(source):
        return _load_local(path, source, split_names), repr(source)
    return _load_hub(source, config_name), repr(source)


def pool_split_name(raw: dict[str, Dataset], train_split: str, desc: str) -> str:
    """The split the training pool comes from: ``train_split``, or a source's only split."""
    if train_split in raw:
        return train_split
    if len(raw) == 1:
        return next(iter(raw))
    raise DataError(
        f"{desc} has no split {train_split!r}; available splits: {', '.join(sorted(raw))}"
    )


def _looks_like_path(source: str) -> bool:
    return (
        source.startswith(("/", "./", "../", "~", "\\"))
        or Path(source).suffix.lower() in LOCAL_SUFFIXES
    )


def _load_local(path: Path, source: str, split_names: Sequence[str]) -> dict[str, Dataset]:
    from datasets import load_dataset

    if not path.exists():
        raise DataError(f"data source {source!r}: no such file or directory")
    if path.is_file():
        builder = LOCAL_SUFFIXES.get(path.suffix.lower())
        if builder is None:
            raise DataError(
                f"data source {source!r}: unsupported file type {path.suffix!r}; "
                f"use one of {', '.join(LOCAL_SUFFIXES)}"
            )
        data_files: dict[str, list[str]] = {"train": [str(path)]}
    else:
        builder, data_files = _directory_files(path, source, split_names)
    if builder in _TEXT_BUILDERS:
        for files in data_files.values():
            for file in files:
                _check_utf8(Path(file))
    try:
        loaded = load_dataset(builder, data_files=data_files)
    except Exception as e:  # noqa: BLE001 - any reader failure becomes one readable line
        raise DataError(f"could not read data source {source!r}: {one_line(e)}") from e
    return dict(loaded)


_TEXT_BUILDERS = ("csv", "json")
"""The ``datasets`` builders that read text files, which must be UTF-8."""


def _check_utf8(path: Path, chunk: int = 1 << 20) -> None:
    """DataError naming the first byte that is not UTF-8 (``datasets`` says only
    "DatasetGenerationError"); the file is read in chunks, never whole."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as e:
                    # decode() only reports what it could not finish: bytes held over from
                    # the previous block come first in ``e.object``.
                    held = len(e.object) - len(block)
                    raise DataError(
                        f"{path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at position "
                        f"{offset - held + e.start}); re-save it as UTF-8") from e
                offset += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as e:  # the file ends inside a multi-byte character
        raise DataError(f"{path} is not UTF-8 text (it ends inside a character at position "
                        f"{offset - (len(e.object) - e.start)}); re-save it as UTF-8") from e
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from e


def _directory_files(
    path: Path, source: str, split_names: Sequence[str]
) -> tuple[str, dict[str, list[str]]]:
    """The ``datasets`` builder and ``data_files`` of a directory source."""
    files = sorted(
        p for p in path.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in LOCAL_SUFFIXES
    )  # fmt: skip
    if not files:
        raise DataError(
            f"data source {source!r}: directory has no {'/'.join(LOCAL_SUFFIXES)} files"
        )
    builders = {LOCAL_SUFFIXES[p.suffix.lower()] for p in files}
    if len(builders) > 1:
        raise DataError(
            f"data source {source!r}: directory mixes file types ({', '.join(sorted(builders))})"
        )
    # Files named after splits ("train.csv", "validation.csv") make a pre-split directory.
    named = [p for p in files if p.name[: -len(p.suffix)] in split_names]
    if named and len(named) != len(files):
        others = [p.name for p in files if p not in named]
        raise DataError(
            f"data source {source!r}: directory mixes split files "
            f"({', '.join(p.name for p in named)}) with other files ({', '.join(others)})"
        )
    data_files: dict[str, list[str]] = {}
    for p in files:
        key = p.name[: -len(p.suffix)] if named else "train"
        data_files.setdefault(key, []).append(str(p))
    return builders.pop(), data_files


def _load_hub(source: str, config_name: str | None) -> dict[str, Dataset]:
    from datasets import load_dataset

    what = repr(source) + (f" (config {config_name!r})" if config_name else "")
    try:
        loaded = load_dataset(source, config_name)
    except Exception as e:  # noqa: BLE001 - hub, network and script errors alike
        raise DataError(
            f"could not load dataset {what} from the Hugging Face Hub: {one_line(e)}"
        ) from e
    if not hasattr(loaded, "items"):
        return {"train": loaded}
    return dict(loaded)
