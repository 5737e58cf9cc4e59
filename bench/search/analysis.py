"""The targets, tables and figure of bench/search/quality.py (see its docstring).

Rules, fixed before the run:

* **Picks:** bench/search/picks.py.
* **kdtune's default** is the multi-objective arm (random search and accuracy-only TPE are
  baselines, not candidates; an arm run on fewer seeds is not a candidate) with the highest
  mean *selection* hypervolume over seeds (every complete trial's selection figures); the
  targets are then read on the *test* split, which took no part in that choice.
* **Hypervolume:** of (accuracy up, sigma down) with reference point :data:`REF` (accuracy
  0.5, chance on balanced polarity; sigma 0.5), Optuna's exact computation. Test
  hypervolume: of the test figures of a study's selection front (what ``kdtune test``
  measures).
* **Spread:** standard deviation over seeds with ddof = 1.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from picks import ACC_POINT, RULES
from rungs import (
    chance_after_epochs,
    chance_table,
    complete,
    corr_table,
    rank_correlations,
)

REPO = Path(__file__).resolve().parents[2]
REF = (0.5, 0.5)
KAPPA = 0.05
SIGMA_CUT = 0.35
MARK_START, MARK_END = "<!-- search-targets:start -->", "<!-- search-targets:end -->"


# ---------------------------------------------------------------------------------------
# Figures per run


def hv(points: list[tuple[float, float]]) -> float:
    """Hypervolume of (accuracy, sigma) points against :data:`REF` (0 for no point)."""
    from kdtune.study.front import hypervolume

    pts = [(-a, s) for a, s in points if math.isfinite(a) and math.isfinite(s)]
    return hypervolume(pts, (-REF[0], REF[1])) if pts else 0.0


def test_points(run: dict) -> list[dict]:
    """The test figures of the run's tested front, with their trial numbers."""
    out = []
    for number, v in run["verdicts"].items():
        test = v.get("test") or {}
        if test.get("accuracy_student") is not None and test.get("sigma") is not None:
            out.append({"number": int(number), **test})
    return sorted(out, key=lambda p: -p["accuracy_student"])


def run_figures(run: dict) -> dict:
    trained = [t for t in run["trials"] if t["epochs_trained"]]
    epochs = sum(t["epochs_trained"] for t in trained)
    tests = test_points(run)
    lowest = min(tests, key=lambda p: p["sigma"], default=None)
    return {
        "trials": len(run["trials"]), "configs": len(trained), "epochs": epochs,
        "seconds": run["seconds"],
        "configs_per_hour": len(trained) / run["seconds"] * 3600,
        "configs_per_100_epochs": 100 * len(trained) / max(1, epochs),
        "complete": len(complete(run)),
        "hv_selection": hv([(t["accuracy"], t["sigma"]) for t in complete(run)]),
        "hv_test": hv([(p["accuracy_student"], p["sigma"]) for p in tests]),
        "lowest_test_sigma": lowest,
    }


# ---------------------------------------------------------------------------------------
# Write-up


def mean_sd(values: list[float]) -> str:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.4f}"
    return f"{np.mean(vals):.4f} ± {np.std(vals, ddof=1):.4f}"


def ci(test: dict, key: str) -> str:
    lo, hi = (test.get(f"{key}_ci") or [float("nan")] * 2)[:2]
    return f"{test[key]:.4f} [{lo:.4f}, {hi:.4f}]"


def choose_default(figs: dict[str, list[dict]]) -> str:
    """The candidate with the highest mean selection hypervolume. Candidates: kdtune's
    multi-objective search options run on every seed (random search and accuracy-only TPE
    are the baselines, not candidates)."""
    seeds = max(len(fs) for fs in figs.values())
    mo = {arm: np.mean([f["hv_selection"] for f in fs]) for arm, fs in figs.items()
          if arm not in ("acc-only", "random") and len(fs) == seeds}
    return max(mo, key=mo.get)


def _sigma_sentence(saved: dict, default: str, rule: str) -> str:
    """Target 1 under one pick rule: test sigma cut and accuracy gap per seed."""
    rows = [p for p in saved.get("picks", []) if p["arm"] == default
            and p.get("rule", "same-size") == rule]
    met = []
    for p in rows:
        ref, pick = p["reference"]["test"], p["pick"] and p["pick"]["test"]
        if pick is None:
            met.append((p["seed"], None, None))
            continue
        met.append((p["seed"], (ref["sigma"] - pick["sigma"]) / ref["sigma"],
                    pick["accuracy_student"] - ref["accuracy_student"]))
    ok = [m for m in met if m[1] is not None and m[1] >= SIGMA_CUT and m[2] >= -ACC_POINT]
    detail = "; ".join(f"seed {s}: " + ("no pick within one point" if c is None else
                       f"sigma {c:+.0%} lower, accuracy {g * 100:+.1f} points") for s, c, g in met)
    where = ("at the accuracy-only best's size or smaller" if rule == "same-size" else
             "anywhere under the size cap (the constraint both searches had)")
    verdict = "met" if met and len(ok) == len(met) else "missed"
    return (f"- **Sigma against the accuracy-only best, {where}: {verdict} ({len(ok)} of "
            f"{len(met)} seeds).** kdtune's default ({default}) found students whose test "
            f"sigma is at least 35% lower with at most one point less test accuracy on "
            f"{len(ok)} of {len(met)} seeds ({detail}).")


def targets(saved: dict, figs: dict, default: str, corr: list[dict]) -> list[str]:
    """The four target sentences (issue 13's *Done when*), each met or missed."""
    lines = []
    for rule in RULES:
        lines.append(_sigma_sentence(saved, default, rule))
    d = {f["seed"]: f["hv_test"] for f in figs[default]}
    r = {f["seed"]: f["hv_test"] for f in figs.get("random", [])}
    seeds = sorted(set(d) & set(r))
    wins = [s for s in seeds if d[s] > r[s]]
    spread = max(np.std(list(d.values()), ddof=1) if len(d) > 1 else 0.0,
                 np.std(list(r.values()), ddof=1) if len(r) > 1 else 0.0)
    diff = float(np.mean([d[s] - r[s] for s in seeds])) if seeds else float("nan")
    good = len(wins) == len(seeds) and seeds and diff > spread
    lines.append(f"- **Hypervolume against random search: {'met' if good else 'missed'}.** "
                 f"Test hypervolume {mean_sd(list(d.values()))} against random's "
                 f"{mean_sd(list(r.values()))}: higher on {len(wins)} of {len(seeds)} seeds, by "
                 f"{diff:+.4f} on average against a seed spread of {spread:.4f}.")
    lows = [f["lowest_test_sigma"] for f in figs[default] if f["lowest_test_sigma"]]
    best = min(lows, key=lambda p: p["sigma"], default=None)
    reached = best is not None and best["sigma"] <= KAPPA
    sure = best is not None and (best.get("sigma_ci") or [0, 1])[1] <= KAPPA
    if best is None:
        lines.append("- **phi_cnf: missed.** No front of the default was tested.")
    else:
        note = ("" if not reached else " and its interval lies under kappa" if sure
                else ", but its interval reaches above kappa")
        lines.append(f"- **phi_cnf (sigma <= {KAPPA}): {'met' if reached else 'missed'}.** "
                     f"The lowest test sigma on the default's fronts is {ci(best, 'sigma')} "
                     f"(accuracy {best['accuracy_student']:.3f}){note}.")
    halving = [a for a in figs if a.startswith("halving-")]
    ratios = []
    for arm in halving:
        base = arm.removeprefix("halving-")
        for f in figs[arm]:
            twin = [g for g in figs.get(base, []) if g["seed"] == f["seed"]]
            if twin:
                ratios.append((arm, f["seed"], f["configs_per_hour"] / twin[0]["configs_per_hour"],
                               f["configs_per_100_epochs"] / twin[0]["configs_per_100_epochs"]))
    rho = "; ".join(f"{c['figure']} after {c['rung']} epoch(s) {c['rho']:.2f} (n={c['n']}, "
                    f"{c['arms']})" for c in corr)
    hour = [x[2] for x in ratios]
    if not hour:
        lines.append("- **Configurations per hour with successive halving: not measured** (no "
                     "arm of this run trains the same sampler at full length beside its halving "
                     f"arm). Rank correlation of a rung with the final result (Spearman): "
                     f"{rho or 'n/a'}.")
        return lines
    good = min(hour) >= 2
    lines.append(f"- **Configurations per hour with successive halving: "
                 f"{'met' if good else 'missed'}.** Against the same sampler at full length, "
                 f"halving trained {np.mean(hour):.2f}x as many configurations per wall hour "
                 f"(range {min(hour):.2f}-{max(hour):.2f}, {len(hour)} study pairs) and "
                 f"{np.mean([x[3] for x in ratios]):.2f}x per epoch "
                 f"of compute. Rank correlation of a rung with the final result (Spearman): "
                 f"{rho or 'n/a'}.")
    return lines


def _students_data(saved: dict) -> str:
    """What the students of a saved run learnt on (``data.students: all`` from 2026-12-06)."""
    transfer = saved.get("transfer_size", 800)
    if saved.get("date", "") < "2026-12-06":
        return f"the {transfer} transfer sentences"
    return (f"every sentence outside the selection and test splits (the teacher's training "
            f"split and the {transfer}-sentence transfer split)")


def write_up(saved: dict) -> None:
    runs = saved["runs"]
    figs: dict[str, list[dict]] = {}
    for run in runs:
        figs.setdefault(run["arm"], []).append({"seed": run["seed"], **run_figures(run)})
    corr = rank_correlations(runs)
    chance = chance_after_epochs(runs)
    default = choose_default(figs)
    tlines = targets(saved, figs, default, corr)
    head = [f"Measured {saved['date']} on {saved['machine']}, {saved['workers']} worker "
            f"processes of 1 thread; command `{saved['command']}`; equal compute: "
            f"{saved['epoch_budget']} trained epochs per study; students learn on "
            f"{_students_data(saved)}; verdicts on the 400-sentence "
            f"test split, which no search or choice read. Detail: "
            "[RESULTS-search.md](RESULTS-search.md).", ""]
    block = [MARK_START, "## Search targets (issue 13)", "", *head, *tlines, MARK_END]
    _put_block(REPO / "bench" / "RESULTS.md", block)
    detail = ["# Search quality at equal compute", "", *head, *tlines, "",
              f"kdtune's default by the rule fixed before the run (highest mean selection "
              f"hypervolume): **{default}**.", "", *_arm_table(figs), "", *_pick_table(saved),
              "", *corr_table(corr), "", *chance_table(chance), "",
              "![fronts](search-fronts.png)", "",
              f"Load average before the run {saved.get('load_before')}; after each study in "
              "search-results.json. Wall time "
              f"{saved.get('seconds_total', saved.get('seconds', 0)) / 60:.0f} min"
              + (f" since the run was resumed at {saved['resumed_at']}."
                 if saved.get("resumed_at") else "."), ""]
    (REPO / "bench" / "RESULTS-search.md").write_text("\n".join(detail))
    from figure import fronts_figure

    fronts_figure(saved, default, test_points, KAPPA)
    print("\n".join(detail))


def _put_block(path: Path, block: list[str]) -> None:
    text = path.read_text()
    new = "\n".join(block)
    if MARK_START in text:
        before, rest = text.split(MARK_START, 1)
        after = rest.split(MARK_END, 1)[1]
        text = before + new + after
    else:
        title, _, body = text.partition("\n")
        text = f"{title}\n\n{new}\n{body}"
    path.write_text(text)


def _arm_table(figs: dict) -> list[str]:
    lines = ["| arm | studies | trials / trained configs | epochs | configs per hour | "
             "selection HV | test HV | lowest test sigma |", "|---|---|---|---|---|---|---|---|"]
    for arm, fs in figs.items():
        lows = [f["lowest_test_sigma"]["sigma"] for f in fs if f["lowest_test_sigma"]]
        lines.append(
            f"| {arm} | {len(fs)} | " + ", ".join(f"{f['trials']}/{f['configs']}" for f in fs)
            + f" | {mean_sd([f['epochs'] for f in fs])} | "
            f"{mean_sd([f['configs_per_hour'] for f in fs])} | "
            f"{mean_sd([f['hv_selection'] for f in fs])} | {mean_sd([f['hv_test'] for f in fs])}"
            f" | {mean_sd(lows)} |")
    return ["Per arm (mean ± sd over seeds; HV reference accuracy 0.5, sigma 0.5):", "", *lines]


def _pick_table(saved: dict) -> list[str]:
    lines = ["Picks against the accuracy-only best on the same seed (test split, 95% "
             "paired-bootstrap intervals; TinyBERT's recipe at the pick's size):", "",
             "| seed | arm | size | test accuracy | test sigma | sigma vs acc-only | "
             "TinyBERT accuracy | TinyBERT sigma |", "|---|---|---|---|---|---|---|---|"]
    seen = set()
    for p in saved.get("picks", []):
        ref = p["reference"]
        if p["seed"] not in seen:
            seen.add(p["seed"])
            lines.append(f"| {p['seed']} | acc-only best | {ref['size']} | "
                         f"{ci(ref['test'], 'accuracy_student')} | {ci(ref['test'], 'sigma')} "
                         "| | | |")
        arm = f"{p['arm']} ({p.get('rule', 'same-size')})"
        if p["pick"] is None:
            lines.append(f"| {p['seed']} | {arm} | none within one point | | | | | |")
            continue
        t, tb = p["pick"]["test"], p["tinybert"]["test"]
        cut = (ref["test"]["sigma"] - t["sigma"]) / ref["test"]["sigma"]
        lines.append(f"| {p['seed']} | {arm} | {p['pick']['size']} | "
                     f"{ci(t, 'accuracy_student')} | {ci(t, 'sigma')} | {cut:+.0%} lower | "
                     f"{ci(tb, 'accuracy_student')} | {ci(tb, 'sigma')} |")
    return lines
