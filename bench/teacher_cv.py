"""Summarise the teacher-recipe cross-validation (``teacher_recipes.py --fold K`` JSON lines).

Each input line is one fold of one recipe: the model trained on the other folds of the
default split's train + validation pool, scored on the held-out fold (the test split is
never touched). Prints a Markdown table: per-fold accuracy, pooled accuracy (all held-out
predictions together) with its binomial standard error, and each recipe's paired difference
from a reference recipe (fold by fold, so the fold-to-fold difficulty cancels).

    .venv/bin/python bench/teacher_cv.py /tmp/cv/results.jsonl --reference head-lr
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict


def summarise(rows: list[dict], reference: str) -> list[dict]:
    """One summary per recipe, best pooled accuracy first.

    Raises:
        ValueError: a recipe misses a fold the others have, or a fold appears twice.
    """
    by_recipe: dict[str, dict[int, dict]] = defaultdict(dict)
    for row in rows:
        fold = int(row["fold"])
        if fold in by_recipe[row["recipe"]]:
            raise ValueError(f"recipe {row['recipe']!r} has fold {fold} twice")
        by_recipe[row["recipe"]][fold] = row
    folds = sorted({f for per in by_recipe.values() for f in per})
    for recipe, per in by_recipe.items():
        missing = [f for f in folds if f not in per]
        if missing:
            raise ValueError(f"recipe {recipe!r} lacks folds {missing}")
    if reference not in by_recipe:
        raise ValueError(f"reference recipe {reference!r} not among {sorted(by_recipe)}")

    def correct(row: dict) -> float:
        return row["history"][-1]["heldout"] * row["n_heldout"]

    out = []
    for recipe, per in by_recipe.items():
        n = sum(per[f]["n_heldout"] for f in folds)
        acc = sum(correct(per[f]) for f in folds) / n
        ref = by_recipe[reference]
        diffs = [per[f]["history"][-1]["heldout"] - ref[f]["history"][-1]["heldout"]
                 for f in folds]
        out.append({
            "recipe": recipe,
            "folds": [per[f]["history"][-1]["heldout"] for f in folds],
            "pooled": acc,
            "se": math.sqrt(acc * (1 - acc) / n),
            "n": n,
            "diff": sum(diffs) / len(diffs),
            "diff_range": (min(diffs), max(diffs)),
            "seconds": sum(per[f]["seconds"] for f in folds),
        })
    return sorted(out, key=lambda r: -r["pooled"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="JSON lines from teacher_recipes.py --fold K")
    ap.add_argument("--reference", default="head-lr", help="recipe the differences are from")
    args = ap.parse_args()
    with open(args.results, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    table = summarise(rows, args.reference)
    n_folds = len(table[0]["folds"])
    print("| recipe | " + " | ".join(f"fold {k}" for k in range(n_folds))
          + f" | pooled (n = {table[0]['n']}) | vs {args.reference} (fold mean, range)"
          + " | seconds, 1 thread |")
    print("|---" * (n_folds + 4) + "|")
    for r in table:
        lo, hi = r["diff_range"]
        print(f"| {r['recipe']} | " + " | ".join(f"{a:.2%}" for a in r["folds"])
              + f" | {r['pooled']:.2%} ± {r['se']:.2%} | {r['diff']:+.2%} ({lo:+.2%} to {hi:+.2%})"
              + f" | {r['seconds']} |")


if __name__ == "__main__":
    main()
