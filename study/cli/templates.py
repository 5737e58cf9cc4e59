"""The commented example config written by ``kdtune init``."""

from __future__ import annotations

from pathlib import Path

from kdtune.errors import UsageError
from kdtune.fileio import atomic_write_text

EXAMPLE_CONFIG = """\
# kdtune study config. Every key is optional except name and distill.teacher.
# Validate and create the study:   kdtune create kdtune.yaml   (checks the teacher and data too)
# Run it with two local workers:   kdtune run kdtune.yaml --workers 2
# Override any key from the CLI:   --set search.temperature.high=8
name: polarity-minilm

# null: the embedded PostgreSQL server under $KDTUNE_HOME (or $KDTUNE_STORAGE when set).
# Or postgresql://user:password@host:5432/db (password never printed), sqlite:///file.db.
storage: null

distill:
  # Teacher: a fine-tuned classifier directory or hub id. Make one with
  #   kdtune teacher fit -o teacher/
  teacher: teacher
  # Four disjoint splits, seeded (data.seed) and recorded with the study: test (drawn first,
  # read only after the search: kdtune test, kdtune distill), eval (the selection split the
  # search optimises), transfer (labelled sentences the teacher never trained on), train
  # (the teacher's). kdtune teacher fit keeps the same 800 transfer rows out of the
  # teacher's training by default; kdtune create refuses a selection or test row the
  # teacher trained on.
  data:
    source: polarity          # built-in Pang & Lee sentences; or a hub id / csv / json / parquet
    text_columns: [text]      # two columns for sentence pairs
    label_column: label
    transfer_size: 800        # null: no transfer split
    students: all             # all: students learn on every row outside eval and test (the
                              # teacher's train split and the transfer split, scored once by
                              # the teacher); transfer: the transfer split alone
    eval_size: 400            # test_size: null takes 10% of the pool (400 here)
    max_length: 64
    transfer:                 # extra text the teacher scores once (soft targets only)
      text: null              # unlabelled text: a .txt (one per line) / csv / json / parquet
                              # file, a hub dataset id (text_column, split, max_rows) or
                              # polarity-reviews (built in: with max_rows 3200, sigma
                              # 0.112 -> 0.103 at 3 x 384 x 512, twice the training time);
                              # only texts whose wordpieces the labelled rows hold, so the
                              # size stays (text_vocabulary: labelled | any)
      augment: 0              # augmented copies per transfer sentence (TinyBERT-style word
                              # replacement; candidates are the nearest neighbours in the
                              # teacher's own input-embedding space, not a masked LM's)
  student_layers: 2           # searched below unless search.search_student_layers is false
  hidden_size: null           # student width (null: the teacher's); searched below. Heads keep
                              # the teacher's head size (MiniLM at 128: 4 heads of 32), the
                              # feed-forward layer the teacher's ratio (4 x width)
  ffn_size: null              # feed-forward size instead of that ratio (searched with
                              # search.ffn_fractions): 2 x 384 with 1024 fit under a third
  vocabulary: task            # task: the student keeps the teacher's special tokens, the
                              # wordpieces of the students' text and every single character
                              # (MiniLM: ~11k of 30,522 rows; its word embedding is half the
                              # teacher); unseen words split finer, never [UNK]. full: all
  align: none                 # temperature: after training, fit one temperature to the
                              # teacher's probabilities (align_fit: sigma | kl | kl-correct,
                              # KL on the inputs both get right) on 20% of the
                              # transfer rows held out (align_on: heldout | selection) and
                              # fold it into the classifier; labels never change. It lowers
                              # test sigma but makes students overconfident (ECE 0.13 ->
                              # 0.25); kl-correct keeps calibration but raises sigma: off by
                              # default (bench/RESULTS-students.md)
  layer_mapping: uniform      # uniform | top | bottom | an explicit list like [2, 4]
  init: teacher-layers        # teacher-layers: the mapped teacher layers, a narrower student
                              # taking evenly spaced rows/columns of each teacher weight
                              # (Xu et al. 2023); random | checkpoint
  temperature: 1.0
  t2_scaling: true            # multiply the soft loss by t^2
  alpha: 0.5                  # L = alpha*L_soft + (1-alpha)*L_hard + beta*L_intermediate
  beta: 0.0
  intermediate: [hidden, embedding, attention]
  schedule: joint             # joint | two-stage (TinyBERT)
  learning_rate: 5.0e-5
  epochs: 3                   # the fidelity of successive halving below (not searched)
  batch_size: 32
  min_relative_accuracy: 0.6  # prune a trial whose accuracy after an epoch is < 0.6 x teacher's
  eval:
    kappa: 0.05               # phi_cnf holds when sigma <= kappa
    reference_class: 0
    int8: false               # also measure each student after ONNX Runtime's dynamic INT8
                              # quantisation (needs the onnx extra): sigma_int8,
                              # accuracy_int8, agreement_int8 become usable objectives
  device: auto                # auto | cpu | cuda | cuda:N
  threads: null               # torch threads per worker (default: cores / workers)

# What each trial samples; set a parameter to null to keep distill's value.
search:
  temperature: {low: 1.0, high: 20.0, log: true}
  alpha: {low: 0.0, high: 1.0}
  layer_mapping: {choices: [uniform, top, bottom]}
  student_layers: null        # null: 1 .. teacher depth - 1
  hidden_size: null           # null: width_fractions of the teacher's width; or
                              # {choices: [128, 192, 384]}
  width_fractions: [1]        # the teacher's width only (keeps its weights whole); left out:
                              # [0.5, 0.6667, 1], 192, 256 and 384 for MiniLM, but the
                              # narrower students came out 7+ points below the teacher
  # Size, axis one: a student has at most max_params parameters (embeddings included, with
  # the kept vocabulary), or max_params_ratio x the teacher's when max_params is null (left
  # out: one half); null for both: no cap. With both depth and width searched a trial draws
  # one student_shape among the depth x width (x feed-forward) shapes under the cap, so no
  # trial is spent over it: the largest ones (no other as deep, as wide, with as large a
  # feed-forward block) unless params or latency is an objective, then all of them.
  # Axis two, latency: every trial measures it (latency_ms, latency_ratio); add it to the
  # objectives to trade it off, or cap it: max_latency_ratio keeps the shapes whose batch-1
  # latency is under that fraction of the teacher's (timed once per worker, before
  # training). MiniLM with a task vocabulary under a third at full width: 1 layer, 2 with a
  # feed-forward block of 1024 or 3 with 512 (bench/RESULTS.md: a study of this config found
  # a 3 x 384 x 512 student within 3 points of the teacher); under a half (0.5), 3 layers,
  # or 4 and 5 with narrower feed-forward blocks (4 x 384 x 1024: 2.4 points below).
  max_params: null
  max_params_ratio: 0.3333
  max_latency_ratio: null
  ffn_fractions: [1, 0.6667, 0.3333, 0.25]  # also draw shapes whose feed-forward block
                              # is that fraction of the width's own (1024, 512 and 384 at
                              # 384), written <depth>x<width>x<ffn>: on data with a larger
                              # vocabulary 3 x 384 x 512 is just over a third and
                              # 3 x 384 x 384 is not; explicit depth or width choices above
                              # then form the shapes too; left out: []
  learning_rate: {low: 1.0e-4, high: 1.0e-3, log: true}  # students that start from the
                              # teacher's weights at its width (narrower ones: up to 2e-3);
                              # 1 x 384 did best at 3e-4, 1e-3 cost it 2.7 points
  epochs: null                # the fidelity: distill.epochs, stopped early by halving
  beta: {low: 0.0, high: 1.0}    # joint schedule only: two-stage trials run with beta 1
  schedule: {choices: [joint, two-stage]}
  reuse_repeats: true         # a repeated configuration copies the earlier trial's result
  warm_start:                 # tried first, once, at each of the largest shapes when none
                              # is named: the fixed recipe that came within 2.4 points of
                              # the teacher at 2 x 384 x 1024 and 3 x 384 x 512
                              # (bench/RESULTS-students.md); also: tinybert (TinyBERT's
                              # recipe: t 1, alpha 1, uniform, two-stage); []: none
    - {temperature: 2.0, alpha: 0.7, layer_mapping: uniform, learning_rate: 3.0e-4,
       schedule: joint, beta: 1.0}
  halving: {rungs: [2], eta: 3, min_trials: 6}  # multi-objective successive halving:
                              # after 2 prediction epochs a trial continues only while in
                              # the best 1/3 (non-dominated rank, then crowding distance) of
                              # the trials recorded there, once 6 are (before, all continue:
                              # one in three of 3-5 trials lets the first ones decide). Not
                              # after 1 epoch: that ranking barely predicts the end
                              # (Spearman 0.20-0.35 for accuracy, ~0 for sigma; 0.42-0.81
                              # after two; bench/RESULTS.md). A student still at chance at
                              # a rung is stopped. null: full-length trials. Needs
                              # epochs: null above, distill.epochs >= last rung

# objectives: [accuracy_student, sigma]   # the default for a 2-class teacher; with more
#   classes the default is [accuracy_student, sigma_max] (sigma on class 0 is diluted there).
#   Add params or latency_ms to trade size or speed off as well.
sampler:
  name: nsga2                 # nsga2 | tpe | random | gp
  seed: 0                     # each worker draws its own stream from (seed, index)
  population_size: 8          # NSGA-II: keep it >= the number of parallel workers (better
                              # 2x): a generation breeds from the finished trials of the last
                              # one, so more workers than that overlap generations; kdtune run
                              # and each worker warn when it is smaller
n_trials: 40                  # budget across all workers
epoch_budget: null            # compute budget: no new trial once all trials together have
                              # trained this many epochs (two-stage ones count both stages;
                              # a trial stopped at a halving rung counts what it trained)
max_retries: 2                # re-queues of a trial that raised or whose worker died
heartbeat_interval: 10
"""


def write_example_config(path: Path, force: bool = False) -> None:
    """Write :data:`EXAMPLE_CONFIG` to ``path``; refuses to overwrite unless ``force``.

    Raises:
        UsageError: ``path`` exists and ``force`` is false.
    """
    path = Path(path)
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    atomic_write_text(path, EXAMPLE_CONFIG)
