"""Successive halving's rungs in the search benchmark: how well a rung predicts the end.

:func:`rank_correlations`: Spearman's rho between a rung's figures and the final ones.
:func:`chance_after_epochs`: of the full-length trials that ended as useful students
(COMPLETE) and of those that ended no better than the majority class, how many were at
chance accuracy after each prediction epoch; a rung that ranks chance-level students last
stops the first group's members there.
"""

from __future__ import annotations


def complete(run: dict) -> list[dict]:
    """A run's finished trials with both figures, repeats of an earlier trial left out."""
    return [t for t in run["trials"] if t["state"] == "COMPLETE" and t["duplicate_of"] is None
            and t["accuracy"] is not None and t["sigma"] is not None]


CHANCE = 0.5125
"""Accuracy at or below which a binary student on 400 balanced sentences is at chance
(the majority class is 0.5; 0.5125 is 5 sentences more)."""


def rank_correlations(runs: list[dict]) -> list[dict]:
    """Spearman correlation between a rung and the final figure.

    Full-length arms: accuracy after prediction epoch k against the final accuracy, over
    every trial that trained all epochs (no survivor bias). Halving arms: the recorded rung
    values (accuracy and sigma) against the final ones, over the trials that finished
    (survivors of the rungs, so the range is narrowed).
    """
    from scipy.stats import spearmanr

    out = []
    full = [t for r in runs if "halving" not in r["arm"] and r["arm"] != "acc-only"
            for t in complete(r)]
    for k in (1, 2):
        pairs = []
        for t in full:
            accs = [t["epoch_accuracy"][e] for e in sorted(t["epoch_accuracy"], key=int)]
            if len(accs) >= 3:
                pairs.append((accs[-3 + k - 1], t["accuracy"]))
        if len(pairs) >= 5:
            rho = spearmanr(*zip(*pairs, strict=True)).statistic
            out.append({"arms": "full-length (nsga2, tpe, gp, random)", "rung": k,
                        "figure": "accuracy", "n": len(pairs), "rho": float(rho)})
    halved = [t for r in runs if "halving" in r["arm"] for t in complete(r)]
    for k in (1, 2):
        for j, figure in enumerate(("accuracy", "sigma")):
            pairs = [(t["rungs"][str(k)]["values"][j], t[figure]) for t in halved
                     if str(k) in t["rungs"]]
            if len(pairs) >= 5:
                rho = spearmanr(*zip(*pairs, strict=True)).statistic
                out.append({"arms": "halving survivors", "rung": k, "figure": figure,
                            "n": len(pairs), "rho": float(rho)})
    return out


def chance_after_epochs(runs: list[dict]) -> list[dict]:
    """Full-length arms' trials that trained all epochs: per end state (useful students,
    COMPLETE; students no better than the majority class at the end) and prediction epoch
    k, how many were at chance after epoch k."""
    groups = {"useful at the end": [], "at chance at the end": []}
    for r in runs:
        if "halving" in r["arm"]:
            continue
        for t in r["trials"]:
            accs = [t["epoch_accuracy"][e] for e in sorted(t["epoch_accuracy"], key=int)]
            if len(accs) < 3 or t["duplicate_of"] is not None:  # a repeat copies its twin's
                continue
            if t["state"] == "COMPLETE":
                groups["useful at the end"].append(accs[-3:])
            elif "common label" in (t["reason"] or ""):
                groups["at chance at the end"].append(accs[-3:])
    return [{"group": g, "n": len(rows),
             "at_chance": [sum(a[k] <= CHANCE for a in rows) for k in (0, 1)]}
            for g, rows in groups.items()]


def corr_table(corr: list[dict]) -> list[str]:
    lines = ["Rung-to-final rank correlation (Spearman):", "",
             "| trials | rung (epochs) | figure | n | rho |", "|---|---|---|---|---|"]
    lines += [f"| {c['arms']} | {c['rung']} | {c['figure']} | {c['n']} | {c['rho']:.3f} |"
              for c in corr]
    return lines


def chance_table(chance: list[dict]) -> list[str]:
    lines = [f"Full-length trials at chance (accuracy <= {CHANCE}) after their first and "
             "second prediction epochs, by how they ended:", "",
             "| trials | n | at chance after epoch 1 | after epoch 2 |", "|---|---|---|---|"]
    lines += [f"| {c['group']} | {c['n']} | {c['at_chance'][0]} | {c['at_chance'][1]} |"
              for c in chance]
    return lines
