"""Search quality at equal compute: which search finds small students that keep the teacher's
confidences, judged on data no search looked at?

Task: the demo's polarity MiniLM teacher (``kdtune teacher fit`` defaults: 2,400 training
sentences; 400 test, 400 selection and 800 transfer sentences kept out). ``--transfer-size``
sets the transfer split (another size fits its own teacher on the rest of the pool: 1600
leaves it 1,600 training sentences; the selection and test splits stay the same rows). The
students learn on kdtune's default data (``data.students: all``: every sentence outside the
selection and test splits; before 2026-12-06 the transfer split alone), every search
optimises the 400-sentence selection split, and the verdicts come from the 400-sentence test
split. Every study has kdtune's default size cap (``max_params_ratio``: one half since
2026-12-07, one third before), trains 3 prediction epochs (the fidelity, not searched) and
searches kdtune's default space otherwise (temperature, alpha, mapping, learning rate,
schedule, beta where it weights something, depth and width drawn together among the shapes
under the cap).

Arms (:data:`ARMS`), each a real kdtune study run by ``kdtune run``'s code path (2 local
worker processes of 1 torch thread, embedded PostgreSQL of $KDTUNE_HOME, names ``bench-...``):
successive halving (rungs after 1 and 2 epochs, eta 3) with NSGA-II, NSGA-II without it,
random search and accuracy-only TPE (the core arms); then the sampler comparison:
multivariate TPE, Optuna's GP sampler, and TPE with halving. Each arm has its own sampler
seeds (:func:`sampler_seed`).

Equal compute: every study has the same ``epoch_budget`` (epochs trained by all its trials
together, intermediate-stage epochs included; an untrained over-cap trial costs 0); no worker
takes a trial once it is spent, so each study overshoots by at most what its last running
trials still trained (the actual epochs are reported). Each arm runs on ``--seeds`` seeds:
seed s is the sampler's seed (streams drawn from ``SeedSequence([s, worker])``) and the
students' training seed; the data splits and the teacher are the same for all. The arms run
interleaved (seed 0 of every arm, then seed 1, ...) so a change in machine load falls on all.

After each study, ``kdtune test``'s code (:func:`kdtune.study.verdict.test_front`, 1 thread:
the workers' floating point) retrains its Pareto front on the selection split and measures it
on test. Then bench/search/picks.py picks, per seed, each arm's student against the
accuracy-only best (same size or smaller, within one point of its selection accuracy, lowest
selection sigma), retrains picks that are not on a front, trains the TinyBERT recipe at each
pick's size, and writes bench/search-results.json (every trial's parameters and figures),
bench/search-fronts.png, bench/RESULTS-search.md and the target sentences at the top of
bench/RESULTS.md.

    .venv/bin/python bench/search/quality.py --seeds 3 --epoch-budget 45
    .venv/bin/python bench/search/quality.py --from-json bench/search-results.json  # write-up only
    .venv/bin/python bench/search/quality.py --seeds 3 --epoch-budget 30 --space example \
        --arms halving-nsga2,random,acc-only  # the four targets on the example config's space
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # its siblings and bench/, PYTHONSAFEPATH too
REPO = HERE.parents[1]

EPOCHS = 3
RUNGS, ETA = (1, 2), 3
ARMS: dict[str, dict] = {
    "halving-nsga2": {"sampler": "nsga2", "halving": True},
    "nsga2": {"sampler": "nsga2"},
    "random": {"sampler": "random"},
    "acc-only": {"sampler": "tpe", "objectives": ["accuracy_student"]},
    "tpe": {"sampler": "tpe"},
    "gp": {"sampler": "gp"},
    "halving-tpe": {"sampler": "tpe", "halving": True},
    "halving-nsga2-third-ffn": {"sampler": "nsga2", "halving": True,
                                "search": {"max_params_ratio": 0.3333,
                                           "ffn_fractions": [1, 0.6667, 0.3333]}},
    "halving-nsga2-third-384": {"sampler": "nsga2", "halving": True,
                                "search": {"max_params_ratio": 0.3333,
                                           "hidden_size": {"choices": [384]},
                                           "ffn_fractions": [1, 0.6667, 0.3333]}},
    "example": {"sampler": "nsga2", "halving": {"rungs": [2], "eta": 3, "min_trials": 6},
                "search": {"max_params_ratio": 0.3333, "width_fractions": [1],
                           "ffn_fractions": [1, 0.6667, 0.3333, 0.25],
                           "learning_rate": {"low": 1e-4, "high": 1e-3, "log": True},
                           "warm_start": [{"temperature": 2.0, "alpha": 0.7,
                                           "layer_mapping": "uniform", "learning_rate": 3e-4,
                                           "schedule": "joint", "beta": 1.0}]}},
}
ARMS["example-half"] = {**ARMS["example"],
                        "search": {**ARMS["example"]["search"], "max_params_ratio": 0.5}}
"""Arm name -> sampler, successive halving on or off, objectives (default: accuracy, sigma),
search keys set over kdtune's defaults (``third-ffn``, ``third-384``: a third of the teacher's
parameters with narrower feed-forward blocks drawn too, at every width or at the teacher's
alone; ``example``: the search of the example config, ``kdtune init`` (0.25 joined its
feed-forward fractions in session 17: on polarity the largest shapes stay the same, so
earlier runs stand); ``example-half``: the same under one half)."""
CORE = ("halving-nsga2", "nsga2", "random", "acc-only")
SPACES = ("example", "example-half")
"""Arms whose search space (``--space``) every arm of a run can take."""


def in_space(spec: dict, space: str | None) -> dict:
    """``spec`` run in the search space of the arm ``space`` (its search keys, warm start
    included; its halving where ``spec`` halves); ``spec`` itself when ``space`` is None.
    So random search and accuracy-only TPE can be compared with the example config's study
    on the same shapes, learning rates and warm start."""
    if space is None:
        return spec
    base = ARMS[space]
    out = {**spec, "search": {**base["search"], **spec.get("search", {})}}
    if spec.get("halving"):
        out["halving"] = base["halving"]
    return out
"""The arms run first (all seeds), before the sampler comparison's."""


def sampler_seed(arm: str, seed: int) -> int:
    """The study seed of ``arm`` on ``seed``: distinct per arm, so no two arms draw the same
    random stream (TPE's random start-up trials would otherwise repeat the random arm's)."""
    return zlib.crc32(arm.encode()) % 10_000 * 100 + seed


def arm_config(arm: str, seed: int, teacher: Path, name: str, epoch_budget: int,
               transfer_size: int = 800) -> dict:
    """The kdtune study config of one arm on one seed (students train with seed ``seed``
    in every arm: the arms are paired on training noise, not on sampler streams)."""
    spec = ARMS[arm]
    cfg = {
        "name": name,
        "distill": {"teacher": str(teacher),
                    "data": {"transfer_size": transfer_size, "eval_size": 400,
                             "max_length": 64},
                    "epochs": EPOCHS, "batch_size": 32, "min_relative_accuracy": 0.6,
                    "seed": seed},
        "search": {"epochs": None,
                   "halving": spec["halving"] if isinstance(spec.get("halving"), dict)
                   else {"rungs": list(RUNGS), "eta": ETA} if spec.get("halving")
                   else None},
        "sampler": {"name": spec["sampler"], "seed": sampler_seed(arm, seed)},
        "n_trials": 1000,  # the epoch budget ends each study
        "epoch_budget": epoch_budget,
    }
    cfg["search"].update(spec.get("search", {}))
    if "objectives" in spec:
        cfg["objectives"] = spec["objectives"]
    return cfg


def collect(study) -> list[dict]:
    """Every trial of ``study``: state, parameters, figures, compute, rungs, reason."""
    from kdtune.attrs import (
        DUPLICATE_OF,
        EPOCH_ACCURACY_PREFIX,
        EPOCHS_TRAINED,
        FAIL_REASON,
        PRUNE_REASON,
        RUNG_PREFIX,
    )

    out = []
    for t in study.get_trials(deepcopy=False):
        ua = t.user_attrs
        seconds = ((t.datetime_complete - t.datetime_start).total_seconds()
                   if t.datetime_complete and t.datetime_start else None)
        out.append({
            "number": t.number, "state": t.state.name, "params": t.params,
            "values": t.values, "accuracy": ua.get("accuracy_student"),
            "sigma": ua.get("sigma"), "n_params": ua.get("params"),
            "epochs_trained": ua.get(EPOCHS_TRAINED, 0), "seconds": seconds,
            "duplicate_of": ua.get(DUPLICATE_OF), "config": ua.get("config"),
            "epoch_accuracy": {k.removeprefix(EPOCH_ACCURACY_PREFIX): v
                               for k, v in ua.items() if k.startswith(EPOCH_ACCURACY_PREFIX)},
            "rungs": {k.removeprefix(RUNG_PREFIX): v for k, v in ua.items()
                      if k.startswith(RUNG_PREFIX)},
            "reason": ua.get(PRUNE_REASON) or ua.get(FAIL_REASON),
        })
    return out


def run_arm(arm: str, seed: int, teacher: Path, stamp: str, epoch_budget: int,
            workers: int, transfer_size: int = 800) -> dict:
    """Run one study to its epoch budget, test its front; its record for the JSON."""
    from kdtune.errors import KdtuneError
    from kdtune.study.config import validate_with_overrides
    from kdtune.study.local import run_study
    from kdtune.study.service import open_study
    from kdtune.study.verdict import stored_verdicts, test_front

    name = f"bench-{arm}-s{seed}-{stamp}"
    cfg = validate_with_overrides(arm_config(arm, seed, teacher, name, epoch_budget,
                                             transfer_size), [],
                                  check=True)
    try:
        resumed = bool(open_study(name, None)[0].get_trials(deepcopy=False))
    except KdtuneError:  # no such study yet
        resumed = False
    t0 = time.time()
    run_study(cfg, workers=workers, progress=False)  # a resumed study only tops up
    seconds = time.time() - t0
    t1 = time.time()
    study, _ = open_study(name, None)
    if any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
        test_front(name, None, baselines=False, progress=False, threads=1, jobs=workers)
    # else: every trial was pruned (e.g. all no better than the majority class): no front
    if resumed:  # its search ran before the interruption: the trials' own span
        done = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete]
        seconds = (max(t.datetime_complete for t in done)
                   - min(t.datetime_start for t in done)).total_seconds()
    verdicts = {str(n): v for n, v in stored_verdicts(study).items()}
    return {"arm": arm, "seed": seed, "study": name, "seconds": seconds, "resumed": resumed,
            "test_seconds": time.time() - t1, "objectives": list(cfg.objectives),
            "trials": collect(study), "verdicts": verdicts}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epoch-budget", type=int, default=45)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--transfer-size", type=int, default=800,
                    help="sentences in the transfer split (the teacher fits on the rest "
                         "of the pool outside the selection and test splits)")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--space", choices=SPACES, default=None,
                    help="run every arm in this arm's search space (shapes, learning rates, "
                         "warm start, and its halving for the halving arms)")
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "search-results.json")
    ap.add_argument("--resume", type=Path, default=None,
                    help="go on with an interrupted run's search-results.json (same studies)")
    ap.add_argument("--from-json", type=Path, default=None,
                    help="redo the picks' write-up from a saved search-results.json")
    args = ap.parse_args()
    import analysis
    import picks

    if args.from_json is not None:  # e.g. after an interrupted run: picks, then write-up
        saved = json.loads(args.from_json.read_text())
        if "picks" not in saved:
            picks.add_picks(saved)
            args.from_json.write_text(json.dumps(saved, indent=1))
        analysis.write_up(saved)
        return
    arms = args.arms.split(",")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        ap.error(f"unknown arms {unknown}; known: {', '.join(ARMS)}")
    ARMS.update({a: in_space(ARMS[a], args.space) for a in arms})

    import torch

    from kdtune.objectives.teacher.registry import cached_teacher
    from kdtune.study.cli.demo import demo_teacher_config

    fit = demo_teacher_config()  # the demo's teacher, shared with its cache, at 800
    if args.transfer_size != fit.data.transfer_size:  # kdtune refuses a transfer set that
        # overlaps the teacher's training data: fit one that keeps the larger set out
        fit = fit.model_copy(update={"data": fit.data.model_copy(
            update={"transfer_size": args.transfer_size})})
    teacher = cached_teacher(fit)
    stamp = time.strftime("%Y%m%d%H%M%S")
    previous = json.loads(args.resume.read_text()) if args.resume else None
    if previous:
        stamp = previous["runs"][0]["study"].rsplit("-", 1)[1]
    command = " ".join(["bench/search/quality.py", *sys.argv[1:]])
    saved = {"command": f".venv/bin/python {command}", "date": time.strftime("%Y-%m-%d %H:%M"),
             "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch "
                        f"{torch.__version__}", "teacher": str(teacher),
             "epoch_budget": args.epoch_budget, "workers": args.workers, "epochs": EPOCHS,
             "transfer_size": args.transfer_size,
             "rungs": list(RUNGS), "eta": ETA, "arms": {a: ARMS[a] for a in arms},
             "load_before": load_average(), "runs": []}
    if previous:  # keep what ran, and its command, date and load
        saved.update({k: previous[k] for k in ("command", "date", "load_before", "runs",
                                                "picks") if k in previous})
        saved["resumed_at"] = time.strftime("%Y-%m-%d %H:%M")
    finished = {(r["seed"], r["arm"]) for r in saved["runs"]}
    started = time.time()
    core = [a for a in arms if a in CORE]
    order = [(seed, arm) for group in (core, [a for a in arms if a not in CORE])
             for seed in range(args.seeds) for arm in group if (seed, arm) not in finished]
    for seed, arm in order:  # interleaved: every core arm on seed 0, then seed 1, ...
        run = run_arm(arm, seed, teacher, stamp, args.epoch_budget, args.workers,
                      args.transfer_size)
        run["load_after"] = load_average()
        saved["runs"].append(run)
        trained = [t for t in run["trials"] if t["epochs_trained"]]
        print(f"{arm:14s} seed {seed}: {len(run['trials'])} trials, {len(trained)} trained,"
              f" {sum(t['epochs_trained'] for t in trained)} epochs, "
              f"{run['seconds']:.0f} s (+{run['test_seconds']:.0f} s test), "
              f"load {run['load_after']}", flush=True)
        args.json.write_text(json.dumps(saved, indent=1))  # a crash keeps what ran
    saved["seconds"] = time.time() - started
    picks.add_picks(saved)  # retrains picks off the fronts, TinyBERT at their sizes
    saved["seconds_total"] = time.time() - started
    args.json.write_text(json.dumps(saved, indent=1))
    analysis.write_up(saved)


if __name__ == "__main__":
    main()
