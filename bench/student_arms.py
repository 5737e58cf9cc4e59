"""The arms of bench/students.py: each a fixed distillation configuration (a lever of issue 23
alone or with others) and :func:`arm_config`, its kdtune config on one seed."""

from __future__ import annotations

from pathlib import Path

COMMON = {"temperature": 2.0, "alpha": 0.7, "beta": 0.0, "epochs": 3, "batch_size": 32,
          "layer_mapping": "uniform", "threads": 2, "warmup_ratio": 0.1}
"""What every arm shares (the intermediate losses only in the TinyBERT arm)."""

ARMS = {
    "today": {"students": "transfer", "vocabulary": "full", "shape": (2, 192), "lr": 1e-3},
    "data": {"students": "all", "vocabulary": "full", "shape": (2, 192), "lr": 1e-3},
    "vocab": {"students": "transfer", "vocabulary": "task", "shape": (1, 384), "lr": 1e-4},
    "align": {"students": "transfer", "vocabulary": "full", "shape": (2, 192), "lr": 1e-3,
              "align": "temperature", "align_fit": "sigma"},
    "all-none": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 1e-4},
    "all-heldout-kl": {"students": "all", "vocabulary": "task", "shape": (1, 384),
                       "lr": 1e-4, "align": "temperature", "align_fit": "kl"},
    "all-heldout-sigma": {"students": "all", "vocabulary": "task", "shape": (1, 384),
                          "lr": 1e-4, "align": "temperature", "align_fit": "sigma"},
    "all-selection-kl": {"students": "all", "vocabulary": "task", "shape": (1, 384),
                         "lr": 1e-4, "align": "temperature", "align_on": "selection",
                         "align_fit": "kl"},
    "all-selection-sigma": {"students": "all", "vocabulary": "task", "shape": (1, 384),
                            "lr": 1e-4, "align": "temperature", "align_on": "selection",
                            "align_fit": "sigma"},
    "all-augment": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 1e-4,
                    "augment": 1, "neighbours_from": "vocabulary"},
    "all-6ep": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 1e-4,
                "epochs": 6},
    "aug1-text": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 1e-4,
                  "augment": 1, "neighbours_from": "text"},
    "aug3-text": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 1e-4,
                  "augment": 3, "neighbours_from": "text"},
    "half-3x384-aug1": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                        "lr": 1e-4, "augment": 1, "neighbours_from": "text"},
    "all-4x256": {"students": "all", "vocabulary": "task", "shape": (4, 256), "lr": 3e-4},
    "half-2x384": {"students": "all", "vocabulary": "task", "shape": (2, 384), "lr": 1e-4},
    "half-3x384": {"students": "all", "vocabulary": "task", "shape": (3, 384), "lr": 1e-4},
    "tinybert": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 1e-4,
                 "recipe": "tinybert"},
    "all-lr3e-4": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 3e-4},
    "all-lr1e-3": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 1e-3},
    "all-alpha1": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 1e-4,
                   "set": {"alpha": 1.0}},
    "all-beta1": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 1e-4,
                  "set": {"beta": 1.0}},
    "third-best": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 3e-4,
                   "augment": 3, "neighbours_from": "text", "set": {"beta": 1.0}},
    "aug3-lr3e-4": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 3e-4,
                    "augment": 3, "neighbours_from": "text"},
    "aug3-beta1": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 1e-4,
                   "augment": 3, "neighbours_from": "text", "set": {"beta": 1.0}},
    "half-best": {"students": "all", "vocabulary": "task", "shape": (3, 384), "lr": 3e-4,
                  "augment": 1, "neighbours_from": "text", "set": {"beta": 1.0}},
    "all-mse": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 1e-4,
                "set": {"soft_loss": "mse"}},
    "all-mse-alpha1": {"students": "all", "vocabulary": "task", "shape": (1, 384),
                       "lr": 1e-4, "set": {"soft_loss": "mse", "alpha": 1.0}},
    "all-mse-lr3e-4": {"students": "all", "vocabulary": "task", "shape": (1, 384),
                       "lr": 3e-4, "set": {"soft_loss": "mse"}},
    "all-mse-beta1": {"students": "all", "vocabulary": "task", "shape": (1, 384),
                      "lr": 1e-4, "set": {"soft_loss": "mse", "beta": 1.0}},
    "all-mse-6ep": {"students": "all", "vocabulary": "task", "shape": (1, 384), "lr": 1e-4,
                    "epochs": 6, "set": {"soft_loss": "mse"}},
    "half-lr3e-4-beta1": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                          "lr": 3e-4, "set": {"beta": 1.0}},
    "half-mse": {"students": "all", "vocabulary": "task", "shape": (3, 384), "lr": 3e-4,
                 "set": {"beta": 1.0, "soft_loss": "mse"}},
    "half-best-mse": {"students": "all", "vocabulary": "task", "shape": (3, 384), "lr": 3e-4,
                      "augment": 1, "neighbours_from": "text",
                      "set": {"beta": 1.0, "soft_loss": "mse"}},
    "third-2x384-ffn1024": {"students": "all", "vocabulary": "task", "shape": (2, 384),
                            "lr": 3e-4, "set": {"beta": 1.0, "ffn_size": 1024}},
    "third-3x384-ffn512": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                           "lr": 3e-4, "set": {"beta": 1.0, "ffn_size": 512}},
    "third-3x384-ffn512-aug1": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                                "lr": 3e-4, "augment": 1, "neighbours_from": "text",
                                "set": {"beta": 1.0, "ffn_size": 512}},
    "third-3x384-ffn512-sigma": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                                 "lr": 3e-4, "align": "temperature", "align_fit": "sigma",
                                 "set": {"beta": 1.0, "ffn_size": 512}},
    "third-3x384-ffn512-klc": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                               "lr": 3e-4, "align": "temperature", "align_fit": "kl-correct",
                               "set": {"beta": 1.0, "ffn_size": 512}},
    "third-3x384-ffn512-aug1-klc": {"students": "all", "vocabulary": "task",
                                    "shape": (3, 384), "lr": 3e-4, "augment": 1,
                                    "neighbours_from": "text", "align": "temperature",
                                    "align_fit": "kl-correct",
                                    "set": {"beta": 1.0, "ffn_size": 512}},
    "third-3x384-ffn512-6ep": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                               "lr": 3e-4, "epochs": 6, "set": {"beta": 1.0, "ffn_size": 512}},
    "third-3x384-ffn512-aug1-6ep": {"students": "all", "vocabulary": "task",
                                    "shape": (3, 384), "lr": 3e-4, "epochs": 6, "augment": 1,
                                    "neighbours_from": "text",
                                    "set": {"beta": 1.0, "ffn_size": 512}},
    "third-3x384-ffn512-rev3200": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                                   "lr": 3e-4, "reviews": 3200,
                                   "set": {"beta": 1.0, "ffn_size": 512}},
    "third-3x384-ffn512-rev9600": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                                   "lr": 3e-4, "reviews": 9600,
                                   "set": {"beta": 1.0, "ffn_size": 512}},
    "half-3x384-rev3200": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                           "lr": 3e-4, "reviews": 3200, "set": {"beta": 1.0}},
    "ceiling-6x384": {"students": "all", "vocabulary": "task", "shape": (6, 384), "lr": 3e-4,
                      "set": {"beta": 1.0}},
    "ceiling-6x384-alpha1": {"students": "all", "vocabulary": "task", "shape": (6, 384),
                             "lr": 3e-4, "set": {"beta": 1.0, "alpha": 1.0}},
    "third-3x384-ffn512-alpha1": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                                  "lr": 3e-4, "set": {"beta": 1.0, "ffn_size": 512,
                                                      "alpha": 1.0}},
    "ceiling-6x384-full": {"students": "all", "vocabulary": "full", "shape": (6, 384),
                           "lr": 3e-4, "set": {"beta": 1.0}},
    "ceiling-6x384-drop0": {"students": "all", "vocabulary": "task", "shape": (6, 384),
                            "lr": 3e-4, "set": {"beta": 1.0, "dropout": 0.0}},
    "third-3x384-ffn512-drop0": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                                 "lr": 3e-4, "set": {"beta": 1.0, "ffn_size": 512,
                                                     "dropout": 0.0}},
    "third-3x384-ffn512-aug1-rev3200": {"students": "all", "vocabulary": "task",
                                        "shape": (3, 384), "lr": 3e-4, "augment": 1,
                                        "neighbours_from": "text", "reviews": 3200,
                                        "set": {"beta": 1.0, "ffn_size": 512}},
    "third-3x384-ffn512-aug1-selsigma": {"students": "all", "vocabulary": "task",
                                         "shape": (3, 384), "lr": 3e-4, "augment": 1,
                                         "neighbours_from": "text", "align": "temperature",
                                         "align_on": "selection", "align_fit": "sigma",
                                         "set": {"beta": 1.0, "ffn_size": 512}},
    "ceiling-6x384-full-drop0-alpha1": {"students": "all", "vocabulary": "full",
                                        "shape": (6, 384), "lr": 3e-4,
                                        "set": {"beta": 1.0, "dropout": 0.0, "alpha": 1.0}},
    "ceiling-6x384-full-drop0-alpha1-lr1e-5": {"students": "all", "vocabulary": "full",
                                               "shape": (6, 384), "lr": 1e-5,
                                               "set": {"beta": 1.0, "dropout": 0.0,
                                                       "alpha": 1.0}},
    "third-3x384-ffn512-lr1e-4": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                                  "lr": 1e-4, "set": {"beta": 1.0, "ffn_size": 512}},
    "third-3x384-ffn512-aug3": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                                "lr": 3e-4, "augment": 3, "neighbours_from": "text",
                                "set": {"beta": 1.0, "ffn_size": 512}},
    "third-3x384-ffn512-t1": {"students": "all", "vocabulary": "task", "shape": (3, 384),
                              "lr": 3e-4, "set": {"beta": 1.0, "ffn_size": 512,
                                                  "temperature": 1.0}},
}
"""Each lever alone; all together, without and with alignment (fitted by KL or sigma, on
held-out transfer rows or on the selection split: the ``all-selection-*`` arms train exactly
as ``all-none``, so their difference is alignment alone; every aligned arm also reports the
test-sigma difference on its own student before and after folding T); with one augmented
copy of each students' sentence; deeper-narrower (4 x 256) at the same size; under a half
(2 and 3 x 384); and TinyBERT's recipe at the all-together size. Then (next session):
augmented copies whose replacement words come from the students' own text (so the task
vocabulary does not grow), one and three copies, against six epochs on the unaugmented text
(the compute of one copy), and one copy at 3 x 384. 1 x 384 is the widest
student under a third with a task vocabulary. Then (2026-12-07) the training recipe at
1 x 384, one change each from ``all-none``: learning rate 3e-4 and 1e-3, alpha 1 (soft
targets only), beta 1 (the mapped layers' intermediate losses beside the prediction loss);
and the two that helped (3e-4, beta 1) together with augmentation from the text, under a
third (1 x 384, three copies) and under a half (3 x 384, one copy); at 1 x 384 the three
copies with each of the two alone. Then (2026-12-07, later) the soft term as the mean squared
error of the logits instead of the softened cross-entropy, at 1 x 384 (alpha 0.7 as every
arm, and alpha 1: logits only) and in the half-size recipe. Then (2026-12-07, session 13)
deeper students under a third by a narrower feed-forward block (``ffn_size``): 2 x 384 with
1,024 neurons (0.32 of the teacher) and 3 x 384 with 512 (0.33), in the half-size recipe.
Then (2026-12-07, session 14) alignment of that 3 x 384 student fitted by sigma against KL
on the held-out inputs both classify correctly (``kl-correct``), with test ECE before and
after on the same student. Then (session 16) what lowers that student's test sigma without a
fitted temperature: six epochs (twice the steps), one augmented copy with six epochs (four
times), and the soft term at temperature 1 (the served probabilities themselves). Then (session 17)
unlabelled sentences of the same kind scored by the teacher: 3,200 and 9,600 sentences of the
corpus's whole reviews (``polarity-reviews``, only those whose wordpieces all occur in the
labelled rows, so the task vocabulary and the size stay put), at 3 x 384 x 512 and 3 x 384;
and the same recipe at the teacher's own shape (6 x 384, task vocabulary): how low test sigma
goes when the student lacks no capacity, a floor for the smaller ones; and both with alpha 1
(soft targets only: does the hard-label term move the confidences?), and 6 x 384 with the
teacher's full vocabulary (does the task vocabulary?). Then (session 18) dropout off while
the student learns (``dropout: 0``), at 3 x 384 x 512 and at the teacher's shape, and a
copy of the teacher (full vocabulary) with neither dropout nor the hard-label term, which no
gradient should move (at lr 3e-4 and at 1e-5); and at 3 x 384 x 512 one augmented copy
with 3,200 review sentences, and one augmented copy with a temperature fitted by sigma on
the selection split; and 3 x 384 x 512 at lr 1e-4 (smaller steps, which keep a copy of
the teacher at sigma 0.004), and three augmented copies at 3 x 384 x 512 (the one lever
that moved its sigma, pushed further)."""


def arm_config(name: str, teacher: Path, seed: int) -> dict:
    arm = ARMS[name]
    depth, width = arm["shape"]
    cfg = {**COMMON, "teacher": str(teacher), "seed": seed, "student_layers": depth,
           "hidden_size": width, "learning_rate": arm["lr"], "vocabulary": arm["vocabulary"],
           "align": "none",  # each arm names its alignment: the default changed meanwhile
           "data": {"transfer_size": 800, "eval_size": 400, "max_length": 64,
                    "students": arm["students"]}}
    for key in ("align", "align_on", "align_fit"):
        if key in arm:
            cfg[key] = arm[key]
    if arm.get("augment"):
        cfg["data"]["transfer"] = {"augment": arm["augment"],
                                   "neighbours_from": arm["neighbours_from"]}
    if arm.get("reviews"):
        cfg["data"].setdefault("transfer", {}).update(text="polarity-reviews",
                                                      max_rows=arm["reviews"])
    if "epochs" in arm:
        cfg["epochs"] = arm["epochs"]
    cfg.update(arm.get("set", {}))
    if arm.get("recipe") == "tinybert":  # t 1, alpha 1, intermediate losses first
        cfg.update(temperature=1.0, alpha=1.0, beta=1.0, schedule="two-stage",
                   intermediate_epochs=1, epochs=2)  # 3 epochs in all, as every arm
    return cfg
