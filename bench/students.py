"""Students worth shipping: today's default against each lever alone and all together.

Every arm distils the demo teacher (MiniLM fine-tuned on polarity, 800 transfer sentences
kept out) with one fixed configuration for 3 epochs, on each seed, interleaved (seed-major:
every arm once per seed before the next seed); then measures the student and the teacher on
the test split, which no choice here read: accuracy and sigma with paired bootstrap 95%
intervals of the student-minus-teacher difference, the parameter ratio, batch-1 and batch-32
latency ratios (1 thread, median after warm-up, student and teacher alternated, PyTorch),
the kept vocabulary and the share of test sentences tokenised differently.

    python bench/students.py --code DIR [--seeds 0 1 2] [--arms a,b] [--out bench/...]

``--code DIR`` imports the kdtune of a ``git archive`` snapshot (edits to the checkout do not
leak into a running benchmark). Results append to ``--out`` .jsonl (one line per arm and
seed, resumed when rerun) and the table goes to the .md beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from codebase import CODE_ENV, code_provenance, use_code  # noqa: E402
from student_arms import ARMS, arm_config  # noqa: E402


def latency(model, batches, threads: int = 1) -> float:
    """Median ms per forward over ``batches`` after two warm-up forwards."""
    import torch

    torch.set_num_threads(threads)
    model.eval()
    times = []
    with torch.inference_mode():
        for b in batches[:2]:
            model(**b)
        for b in batches:
            t0 = time.perf_counter()
            model(**b)
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def latencies(student, s_tok, teacher, t_tok, texts: list[str]) -> dict:
    """Batch-1 and batch-32 latency of student and teacher, alternated, and their ratios."""
    out = {}
    for size, n in ((1, 40), (32, 6)):
        groups = [texts[i * size:(i + 1) * size] for i in range(n)]
        s_b = [dict(s_tok(g, padding=True, truncation=True, max_length=64,
                          return_tensors="pt")) for g in groups]
        t_b = [dict(t_tok(g, padding=True, truncation=True, max_length=64,
                          return_tensors="pt")) for g in groups]
        s_ms, t_ms = [], []
        for _ in range(3):  # alternate student and teacher
            s_ms.append(latency(student, s_b))
            t_ms.append(latency(teacher, t_b))
        out[f"latency_b{size}_ms"] = statistics.median(s_ms)
        out[f"teacher_latency_b{size}_ms"] = statistics.median(t_ms)
        out[f"latency_b{size}_ratio"] = statistics.median(s_ms) / statistics.median(t_ms)
    return out


def paired_difference(p_t, p_s, labels, seed: int, n: int = 1000) -> dict:
    """Student minus teacher: accuracy and sigma, 95% paired percentile intervals."""
    import numpy as np

    from kdtune.objectives.measure.bootstrap import resample_counts, weighted_sigma

    ref = 0
    t_ok, s_ok = p_t.argmax(1) == labels, p_s.argmax(1) == labels
    w = resample_counts(len(labels), n, seed)
    acc = (w @ (s_ok.astype(float) - t_ok.astype(float))) / len(labels)
    both = t_ok & s_ok
    sig = weighted_sigma(w, both, p_t[:, ref] - p_s[:, ref])
    return {"accuracy_diff_ci": np.nanpercentile(acc, [2.5, 97.5]).tolist(),
            "sigma_ci": np.nanpercentile(sig, [2.5, 97.5]).tolist(), "n_resamples": n}


def alignment_effect(p_t, p_before, p_after, labels, seed: int, n: int = 1000) -> dict:
    """Test sigma after minus before alignment on the same student: point and 95% paired
    interval (the both-correct set is the same: T keeps every label)."""
    import numpy as np

    from kdtune.objectives.measure.bootstrap import resample_counts, weighted_sigma
    from kdtune.objectives.measure.metrics import confidence_metrics

    both = (p_t.argmax(1) == labels) & (p_before.argmax(1) == labels)
    w = resample_counts(len(labels), n, seed)
    d_before = p_t[:, 0] - p_before[:, 0]
    d_after = p_t[:, 0] - p_after[:, 0]
    diff = weighted_sigma(w, both, d_after) - weighted_sigma(w, both, d_before)
    point = float(np.std(d_after[both]) - np.std(d_before[both]))
    ece = {f"ece_{when}": confidence_metrics(p_t, p, labels)["ece_student"]
           for when, p in (("before", p_before), ("after", p_after))}
    return {"sigma_before": float(np.std(d_before[both])), "sigma_after": float(
        np.std(d_after[both])), "diff": point, **ece,
        "diff_ci": np.nanpercentile(diff, [2.5, 97.5]).tolist(), "n_resamples": n}


def run_arm(name: str, teacher: Path, seed: int) -> dict:
    import numpy as np

    from kdtune.objectives.compute.predict import predict_logits
    from kdtune.objectives.data.tokens import data_collator, tokenize
    from kdtune.objectives.distillation.config import DistillConfig
    from kdtune.objectives.distillation.heldout import measure_test_split
    from kdtune.objectives.distillation.run import distill
    from kdtune.objectives.measure.metrics import softmax
    from kdtune.objectives.student.size import teacher_parameters

    cfg = DistillConfig.model_validate(arm_config(name, teacher, seed))
    t0 = time.perf_counter()
    r = distill(cfg)
    seconds = time.perf_counter() - t0
    test = measure_test_split(cfg, r.student, r.tokenizer, teacher=r.teacher, splits=r.splits,
                              teacher_tokenizer=r.teacher_tokenizer)
    split = r.splits.test
    labels = np.asarray(split["label"])
    p, logits = {}, {}
    for who, model, tok in (("t", r.teacher, r.teacher_tokenizer), ("s", r.student, r.tokenizer)):
        enc = tokenize(split, tok, cfg.data.max_length)
        logits[who] = predict_logits(model, enc, data_collator(tok), "cpu", 64)
        p[who] = softmax(logits[who])
    aligned = {}
    if r.metrics.get("align_temperature") is not None:  # the same student before folding T
        before = softmax(logits["s"] * r.metrics["align_temperature"])
        aligned = {"align_effect_test": alignment_effect(p["t"], before, p["s"], labels, seed)}
    sizes = latencies(r.student.model, r.tokenizer, r.teacher, r.teacher_tokenizer,
                      list(split["text"]))
    m = r.metrics
    return {"arm": name, "seed": seed, "seconds": round(seconds, 1), "config": ARMS[name],
            "selection": {k: m.get(k) for k in ("accuracy_student", "accuracy_teacher",
                                                "sigma", "sigma_unaligned",
                                                "align_temperature")},
            "test": {k: test.get(k) for k in ("accuracy_student", "accuracy_teacher", "sigma",
                                              "sigma_ci", "tokenised_differently",
                                              "ece_student", "ece_teacher")},
            "test_vs_teacher": paired_difference(p["t"], p["s"], labels, seed), **aligned,
            "params": m["params"], "params_ratio": m["params"] / teacher_parameters(
                r.teacher.config), "vocabulary_size": m.get("vocabulary_size"), **sizes}


def table(rows: list[dict]) -> str:
    """One line per arm: means over seeds (min-max), teacher figures beside."""
    def agg(vals, digits=3):
        vals = [v for v in vals if v is not None]
        if not vals:
            return "-"
        return (f"{statistics.mean(vals):.{digits}f} "
                f"({min(vals):.{digits}f}-{max(vals):.{digits}f})")

    lines = ["| arm | seeds | test acc | teacher | acc diff 95% CI (seed 0) | test sigma | "
             "sigma 95% CI (seed 0) | sel. sigma unaligned -> aligned | params ratio | "
             "b1 latency ratio | b32 latency ratio | vocab | test tokenised differently | "
             "test sigma aligned - unaligned, same student [95% CI] | test ECE (teacher) |",
             "|" + "---|" * 15]
    for arm in ARMS:
        rs = [r for r in rows if r["arm"] == arm]
        if not rs:
            continue
        first = min(rs, key=lambda r: r["seed"])
        ci = first["test_vs_teacher"]
        sel = ", ".join(f"{r['selection']['sigma_unaligned']:.3f}->{r['selection']['sigma']:.3f}"
                        for r in rs if r["selection"].get("sigma_unaligned") is not None)
        lines.append(
            f"| {arm} | {len(rs)} | {agg([r['test']['accuracy_student'] for r in rs])} | "
            f"{agg([r['test']['accuracy_teacher'] for r in rs])} | "
            f"[{ci['accuracy_diff_ci'][0]:+.3f}, {ci['accuracy_diff_ci'][1]:+.3f}] | "
            f"{agg([r['test']['sigma'] for r in rs])} | "
            f"[{first['test']['sigma_ci'][0]:.3f}, {first['test']['sigma_ci'][1]:.3f}] | "
            f"{sel or '-'} | {agg([r['params_ratio'] for r in rs])} | "
            f"{agg([r['latency_b1_ratio'] for r in rs], 2)} | "
            f"{agg([r['latency_b32_ratio'] for r in rs], 2)} | {first['vocabulary_size']} | "
            f"{agg([r['test']['tokenised_differently'] for r in rs])} | "
            f"{effect(rs)} | {agg([r['test'].get('ece_student') for r in rs])} "
            f"({agg([r['test'].get('ece_teacher') for r in rs])}) |")
    return "\n".join(lines)


def effect(rows: list[dict]) -> str:
    """Per seed: the alignment's test-sigma difference on the same student with its interval."""
    parts = [f"{e['diff']:+.3f} [{e['diff_ci'][0]:+.3f}, {e['diff_ci'][1]:+.3f}]"
             + (f" (ECE {e['ece_before']:.3f}->{e['ece_after']:.3f})" if "ece_after" in e else "")
             for r in rows if (e := r.get("align_effect_test"))]
    return "; ".join(parts) or "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--out", type=Path, default=Path("bench/students-results.jsonl"))
    args = ap.parse_args()
    if args.code is not None and CODE_ENV not in os.environ:
        use_code(args.code, __file__)  # does not return
    from kdtune.objectives.teacher.registry import cached_teacher
    from kdtune.study.cli.demo import demo_teacher_config

    teacher = cached_teacher(demo_teacher_config())
    done = set()
    rows = []
    if args.out.exists():
        rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
        done = {(r["arm"], r["seed"]) for r in rows}
    arms = [a for a in args.arms.split(",") if a]
    bad = [a for a in arms if a not in ARMS]
    if bad:
        raise SystemExit(f"--arms: unknown {bad[0]!r}; known: {', '.join(ARMS)}")
    for seed in args.seeds:
        for arm in arms:
            if (arm, seed) in done:
                continue
            row = run_arm(arm, teacher, seed)
            rows.append(row)
            with args.out.open("a") as fh:
                fh.write(json.dumps(row, default=float) + "\n")
            print(f"{arm} seed {seed}: test acc {row['test']['accuracy_student']:.4f} "
                  f"sigma {row['test']['sigma']:.4f} params {row['params_ratio']:.3f} "
                  f"b1 {row['latency_b1_ratio']:.2f} ({row['seconds']} s)", flush=True)
    code = code_provenance()
    head = (f"# Students: each lever on the default setting\n\n"
            f"Command: `python bench/students.py {' '.join(sys.argv[1:])}`; "
            f"{time.strftime('%Y-%m-%d %H:%M')} UTC; {platform.node()}, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; code {code['commit']}"
            f"{' (modified)' if code['modified'] else ''}. Teacher: {teacher.name}. "
            "Means over seeds (min-max); intervals are paired bootstrap (1000 resamples) on "
            "the 400-sentence test split, seed 0's run.\n\n")
    args.out.with_suffix(".md").write_text(head + table(rows) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
