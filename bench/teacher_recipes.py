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

Options: ``--epochs`` (full fine-tuning epochs, 3), ``--lr`` (encoder, 5e-5), ``--head-lr``
(pooler + classifier; default = --lr), ``--lp-epochs`` (linear probing first: encoder frozen,
head at 1e-3), ``--reinit-pooler``, ``--seed``, ``--threads``. Unlike ``fit_teacher`` this
loop decays every parameter (it was written before the no-decay groups were compared).
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

    from objectives.data import DataConfig, data_collator, load_splits, tokenize
    from objectives.teacher import (
        LengthGroupedBatches,
        _accuracy,
        _load_classifier,
        _load_tokenizer,
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
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    started = time.time()
    base = resolve_base("minilm")
    tok = _load_tokenizer(base, "minilm")
    splits = load_splits(DataConfig(train_size=3200, eval_size=400, test_size=400))
    torch.manual_seed(args.seed)
    model = _load_classifier(base, "minilm", splits.label_names)
    if args.reinit_pooler:
        model.bert.pooler.dense.reset_parameters()
    enc = tokenize(splits, tok, 128)
    collate = data_collator(tok)
    lengths = [len(x) for x in enc["train"]["input_ids"]]
    loader = DataLoader(enc["train"], collate_fn=collate,
                        batch_sampler=LengthGroupedBatches(lengths, 16, args.seed))
    is_head = {n: n.startswith(("classifier", "bert.pooler")) for n, _ in model.named_parameters()}
    head = [p for n, p in model.named_parameters() if is_head[n]]
    body = [p for n, p in model.named_parameters() if not is_head[n]]
    history = []

    def run(epochs: int, groups: list[dict]) -> None:
        opt = torch.optim.AdamW(groups, weight_decay=0.01)
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
            cpu = torch.device("cpu")
            val = _accuracy(model, enc["eval"], collate, cpu, 32)
            test = _accuracy(model, enc["test"], collate, cpu, 32)
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
    print(json.dumps({"recipe": args.name, **vars(args), "history": history,
                      "seconds": round(time.time() - started)}))


if __name__ == "__main__":
    main()
