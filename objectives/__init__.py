"""kdtune's measuring layer: everything that trains and measures a student.

Only :mod:`.trial` knows Optuna (it turns a trial into a configuration and metrics into
objective values). The public names below are imported on first use
(:mod:`kdtune.lazy`), so ``import kdtune.objectives`` does not load torch. Modules:

* data: :mod:`.data` (config, splits), :mod:`.data_sources`, :mod:`.data_labels`,
  :mod:`.data_splitting`, :mod:`.polarity` (the built-in corpus), :mod:`.tokens`.
* teacher: :mod:`.teacher_fit`, :mod:`.teacher_load`, :mod:`.teacher_registry`,
  :mod:`.teacher_base`, :mod:`.teacher_forward`; its outputs cached by :mod:`.cache`,
  :mod:`.cache_store`, :mod:`.cache_fingerprint`.
* student: :mod:`.student`, :mod:`.student_build`, :mod:`.mapping`, :mod:`.attention`,
  :mod:`.losses`.
* one run: :mod:`.distill` (prepare -> train -> evaluate, from :mod:`.prepare`,
  :mod:`.training`, :mod:`.evaluation`), :mod:`.predict` (the one prediction loop).
* measuring: :mod:`.metrics` (definitions), :mod:`.catalogue` (every metric's name,
  direction and meaning), :mod:`.audit`, :mod:`.checks` (config checks against the teacher
  and the data).
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    # configuration
    "DistillConfig": ".config",
    "EvalConfig": ".config",
    "SearchSpace": ".config",
    "DataConfig": ".data",
    "TeacherFitConfig": ".teacher_fit",
    # data
    "Splits": ".data",
    "describe_protocol": ".protocol",
    "load_splits": ".data",
    "check_labels_match": ".data",
    "tokenize": ".tokens",
    "data_collator": ".tokens",
    # fixed recipes and the retrain-and-test step
    "tinybert_recipe": ".recipes",
    "retrain_and_test": ".recipes",
    "config_hash": ".recipes",
    # teacher
    "fit_teacher": ".teacher_fit",
    "load_teacher": ".teacher_load",
    "read_teacher_metadata": ".teacher_load",
    "cached_teacher": ".teacher_registry",
    "teacher_depth": ".prepare",
    "compute_or_load": ".cache",
    "teacher_fingerprint": ".cache_fingerprint",
    "cache_root": ".cache_store",
    # student and mapping
    "Student": ".student",
    "build_student": ".student_build",
    "count_parameters": ".student",
    "layer_mapping": ".mapping",
    "check_mapping": ".mapping",
    "MAPPING_KINDS": ".mapping",
    # one run
    "distill": ".distill",
    "DistillResult": ".distill",
    "Diverged": ".distill",
    "EarlyStopped": ".distill",
    "predict_logits": ".predict",
    "resolve_device": ".runtime",
    "configure_threads": ".runtime",
    # measuring
    "confidence_metrics": ".metrics",
    "softmax": ".metrics",
    "METRICS": ".catalogue",
    "OBJECTIVES": ".catalogue",
    "audit": ".audit",
    "audit_models": ".audit",
    # the Optuna adapter
    "make_objective": ".trial",
    "suggest_config": ".trial",
})
