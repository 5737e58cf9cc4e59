"""Teacher recipe experiments behind ``TeacherFitConfig``'s defaults (issue 2).

Fine-tunes the packaged MiniLM on polarity's default split (3,200 / 400 / 400, seed 0,
max length 128, batch 16, length-grouped batches, AdamW with linear warmup and decay)
with one recipe change at a time, and prints validation and test accuracy after every
epoch. Recipes are chosen by **validation** accuracy; test accuracy is printed only to
be reported, never to choose.

    .venv/bin/python bench/teacher_recipes.py baseline
    .venv/bin/python bench/teacher_recipes.py head-lr --head-lr 1e-3
    .venv/bin/python bench/teacher_recipes.py lp-ft --lp-epochs 1
    .venv/bin/python bench/teacher_recipes.py head-lr-reinit-pooler --head-lr 1e-3 --reinit-pooler

Cross-validation (``--fold K``): pools the default split's train and validation sentences
(3,600), cuts them into ``--folds`` stratified folds (seed 0), trains on the other folds and
reports accuracy on fold K only; the test split is not evaluated at all. Summarise the JSON
lines with ``bench/teacher_cv.py``.

Options: ``--epochs`` (full fine-tuning epochs, 3), ``--lr`` (encoder, 5e-5), ``--head-lr``
(pooler + classifier; default = --lr), ``--lp-epochs`` (linear probing first: encoder frozen,
head at 1e-3), ``--reinit-pooler``, ``--seed``, ``--threads``, ``--decay`` (``all``: decay
every parameter, how the single-split rows were run; ``fit-teacher``: no decay on biases and
LayerNorm weights, as ``fit_teacher`` does), ``--fold``/``--folds``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    import torch
    from torch.utils.data import DataLoader
    from transformers import get_linear_schedule_with_warmup

    from kdtune.objectives.compute.length_batches import LengthGroupedBatches
    from kdtune.objectives.compute.predict import accuracy, predict_logits
    from kdtune.objectives.data.dataset import DataConfig, load_splits
    from kdtune.objectives.data.tokens import data_collator, tokenize
    from kdtune.objectives.teacher.base import (
        load_base_classifier,
        load_base_tokenizer,
        resolve_base,
    )

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--head-lr", type=float, default=None)
    ap.add_argument("--lp-epochs", type=int, default=0)
    ap.add_argument("--reinit-pooler", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--decay", choices=("all", "fit-teacher"), default="all")
    ap.add_argument("--fold", type=int, default=None, help="cross-validation: held-out fold")
    ap.add_argument("--folds", type=int, default=3)
    args = ap.parse_args()
    if args.fold is not None and not 0 <= args.fold < args.folds:
        ap.error(f"--fold must be in 0..{args.folds - 1}")

    torch.set_num_threads(args.threads)
    started = time.time()
    base = resolve_base("minilm")
    tok = load_base_tokenizer(base, "minilm")
    splits = load_splits(DataConfig(train_size=3200, eval_size=400, test_size=400))
    torch.manual_seed(args.seed)
    model = load_base_classifier(base, "minilm", splits.label_names)
    if args.reinit_pooler:
        model.bert.pooler.dense.reset_parameters()
    enc = tokenize(splits, tok, 128)
    if args.fold is not None:
        enc = cv_fold(enc, args.fold, args.folds)
    collate = data_collator(tok)
    lengths = [len(x) for x in enc["train"]["input_ids"]]
    loader = DataLoader(enc["train"], collate_fn=collate,
                        batch_sampler=LengthGroupedBatches(lengths, 16, args.seed))
    is_head = {n: n.startswith(("classifier", "bert.pooler")) for n, _ in model.named_parameters()}
    head = [p for n, p in model.named_parameters() if is_head[n]]
    body = [p for n, p in model.named_parameters() if not is_head[n]]
    no_decay = {id(p) for n, p in model.named_parameters()
                if args.decay == "fit-teacher" and (n.endswith("bias") or "LayerNorm" in n)}
    history = []

    def split_accuracy(name: str) -> float:
        logits = predict_logits(model, enc[name], collate, "cpu", 32)
        return accuracy(logits, enc[name]["label"])

    def split_decay(groups: list[dict]) -> list[dict]:
        out = []
        for g in groups:
            for decay in (True, False):
                params = [p for p in g["params"] if (id(p) not in no_decay) == decay]
                if params:
                    out.append({**g, "params": params, "weight_decay": 0.01 if decay else 0.0})
        return out

    def run(epochs: int, groups: list[dict]) -> None:
        opt = torch.optim.AdamW(split_decay(groups))
        total = epochs * len(loader)
        sched = get_linear_schedule_with_warmup(opt, round(0.1 * total), total)
        for _ in range(epochs):
            model.train()
            for batch in loader:
                model(**batch).loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
            val = split_accuracy("eval")
            if args.fold is not None:  # cross-validation never looks at the test split
                history.append({"heldout": val})
                print(f"{args.name} fold {args.fold} epoch {len(history)}: held-out {val:.4f}",
                      flush=True)
                continue
            test = split_accuracy("test")
            history.append({"validation": val, "test": test})
            print(f"{args.name} epoch {len(history)}: validation {val:.4f} test {test:.4f}",
                  flush=True)

    if args.lp_epochs:
        for p in body:
            p.requires_grad = False
        run(args.lp_epochs, [{"params": head, "lr": 1e-3}])
        for p in body:
            p.requires_grad = True
    run(args.epochs, [{"params": body, "lr": args.lr},
                      {"params": head, "lr": args.head_lr or args.lr}])
    print(json.dumps({"recipe": args.name, **vars(args), "n_train": len(enc["train"]),
                      "n_heldout": len(enc["eval"]), "history": history,
                      "seconds": round(time.time() - started)}))


def cv_fold(enc: dict, fold: int, folds: int) -> dict:
    """Train on all but fold ``fold`` of the pooled train + validation sentences.

    Folds are stratified by label: each class's rows are shuffled (seed 0) and dealt out
    round-robin, so every fold has the same class balance. No test rows are involved.
    """
    import random

    from datasets import concatenate_datasets

    pool = concatenate_datasets([enc["train"], enc["eval"]])
    label_key = "labels" if "labels" in pool.column_names else "label"
    by_label: dict[int, list[int]] = {}
    for i, y in enumerate(pool[label_key]):
        by_label.setdefault(int(y), []).append(i)
    which = [0] * len(pool)
    rng = random.Random(0)
    for label in sorted(by_label):
        rows = by_label[label]
        rng.shuffle(rows)
        for k, i in enumerate(rows):
            which[i] = k % folds
    heldout = [i for i in range(len(pool)) if which[i] == fold]
    train = [i for i in range(len(pool)) if which[i] != fold]
    return {"train": pool.select(train), "eval": pool.select(heldout)}


if __name__ == "__main__":
    main()
