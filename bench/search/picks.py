"""The picks of bench/search/quality.py: per seed, each multi-objective arm's student against
the accuracy-only best, measured on test (needs training: run once, after the studies).

Rules, fixed before the run:

* **Reference (accuracy-only best):** on each seed, the accuracy-only study's best complete
  trial on the selection split (the first of equal accuracies, as Optuna's ``best_trial``).
* **Pick of a multi-objective arm:** on the same seed, among its complete trials with at most
  the reference's parameters and selection accuracy at least the reference's minus one point,
  the one with the lowest selection sigma (then the higher accuracy, then the earlier trial).
  Picks and references are measured on test (their stored ``kdtune test`` verdict, or
  retrained with 1 thread, which reproduces a trial exactly); the TinyBERT recipe
  (:func:`kdtune.objectives.search.recipes.tinybert_recipe`) is trained at each pick's size on the
  pick's optimiser budget.
"""

from __future__ import annotations

import json

from rungs import complete

ACC_POINT = 0.01


def reference_trial(run: dict) -> dict | None:
    done = sorted(complete(run), key=lambda t: t["number"])
    return max(done, key=lambda t: t["accuracy"]) if done else None


RULES = ("same-size", "cap")
"""Pick rules: ``same-size``, at most the reference's parameters (the targets' reading);
``cap``, any student under the size cap (both searches' constraint)."""


def pick_trial(run: dict, ref: dict, rule: str = "same-size") -> dict | None:
    ok = [t for t in complete(run)
          if (rule == "cap" or t["n_params"] <= ref["n_params"])
          and t["accuracy"] >= ref["accuracy"] - ACC_POINT - 1e-12]
    return min(ok, key=lambda t: (t["sigma"], -t["accuracy"], t["number"])) if ok else None


def size_of(config: dict) -> str:
    ffn = config.get("ffn_size")
    return f"{config['student_layers']}x{config['hidden_size']}" + (f"x{ffn}" if ffn else "")


def add_picks(saved: dict) -> None:
    """``saved["picks"]``: per seed and multi-objective arm, the reference, the pick, both
    on test, and the TinyBERT recipe at the pick's size (trains what is not stored; a row
    already in ``saved["picks"]`` with the same reference and pick is kept)."""
    from kdtune.objectives.data.dataset import load_splits
    from kdtune.objectives.distillation.config import DistillConfig
    from kdtune.objectives.search.recipes import config_hash, retrain_and_test, tinybert_recipe

    splits: dict[str, object] = {}
    trained: dict[str, dict] = {}

    def measured(config: dict, run: dict | None = None, number: int | None = None) -> dict:
        if run is not None and str(number) in run["verdicts"]:
            v = run["verdicts"][str(number)]
            return {"test": v["test"], "selection": v.get("selection"), "retrained": False}
        cfg = DistillConfig.model_validate(config)
        key = config_hash(cfg)
        if key not in trained:
            data = cfg.data.model_dump_json()
            if data not in splits:
                splits[data] = load_splits(cfg.data)
            out = retrain_and_test(cfg, splits[data], threads=1)
            trained[key] = {"test": out["test"], "selection": out["selection"],
                            "retrained": True, "seconds": out["seconds"]}
        return trained[key]

    done = {(p["seed"], p["arm"], p["rule"]): p for p in saved.get("picks", [])}
    picks = []
    runs = saved["runs"]
    for seed in sorted({r["seed"] for r in runs}):
        acc_only = [r for r in runs if r["seed"] == seed and r["arm"] == "acc-only"]
        ref = reference_trial(acc_only[0]) if acc_only else None
        if ref is None:
            continue
        ref_row = {**_brief(ref), **measured(ref["config"], acc_only[0], ref["number"])}
        for run, rule in [(r, rule) for r in runs for rule in RULES]:
            if run["seed"] != seed or run["arm"] == "acc-only":
                continue
            pick = pick_trial(run, ref, rule)
            before = done.get((seed, run["arm"], rule))
            if before and before["reference"]["number"] == ref["number"] and (
                    (before["pick"] or {}).get("number") == (pick or {}).get("number")):
                picks.append(before)  # a resumed run keeps what its seeds already measured
                continue
            row = {"seed": seed, "arm": run["arm"], "rule": rule, "reference": ref_row,
                   "pick": None, "tinybert": None}
            if pick is not None:
                row["pick"] = {**_brief(pick), **measured(pick["config"], run, pick["number"])}
                cfg = DistillConfig.model_validate(pick["config"])
                recipe = tinybert_recipe(cfg, cfg.student_layers, cfg.hidden_size)
                row["tinybert"] = {"size": size_of(pick["config"]),
                                   **measured(json.loads(recipe.model_dump_json()))}
            picks.append(row)
            print(f"pick seed {seed} {run['arm']} {rule}: {json.dumps(_line(row))}", flush=True)
    saved["picks"] = picks


def _brief(t: dict) -> dict:
    return {"number": t["number"], "size": size_of(t["config"]), "n_params": t["n_params"],
            "accuracy_selection": t["accuracy"], "sigma_selection": t["sigma"],
            "params_searched": t["params"]}


def _line(row: dict) -> dict:
    p = row["pick"]
    return {"ref_test_sigma": row["reference"]["test"]["sigma"],
            "pick_test_sigma": p and p["test"]["sigma"],
            "pick_test_acc": p and p["test"]["accuracy_student"]}
