"""kdtune's measuring layer: everything that trains and measures a student.

Its packages follow the pipeline: :mod:`.data` (the dataset, its splits, the students'
text) -> :mod:`.teacher` (fit, load, forward) -> :mod:`.cache` (the teacher's outputs, once)
-> :mod:`.student` (shape, vocabulary, mapping, build) -> :mod:`.distillation` (one run:
config, losses, training, alignment, evaluation) -> :mod:`.measure` (metrics, intervals,
protocol, ONNX, audit; used by the run) -> :mod:`.search` (the only package that knows
Optuna). :mod:`.compute` (device, the prediction loop, attention scores) serves them all.
The public names below are imported on first use (:mod:`kdtune.lazy`), so
``import kdtune.objectives`` does not load torch.
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    # configuration
    "DistillConfig": ".distillation.config",
    "EvalConfig": ".distillation.config",
    "SearchSpace": ".search.space",
    "DataConfig": ".data.dataset",
    "TeacherFitConfig": ".teacher.fit",
    # data
    "Splits": ".data.dataset",
    "describe_protocol": ".measure.protocol",
    "load_splits": ".data.dataset",
    "check_labels_match": ".data.dataset",
    "tokenize": ".data.tokens",
    "data_collator": ".data.tokens",
    # fixed recipes and the retrain-and-test step
    "tinybert_recipe": ".search.recipes",
    "retrain_and_test": ".search.recipes",
    "config_hash": ".search.recipes",
    # teacher
    "fit_teacher": ".teacher.fit",
    "load_teacher": ".teacher.load",
    "read_teacher_metadata": ".teacher.load",
    "cached_teacher": ".teacher.registry",
    "teacher_depth": ".distillation.prepare",
    "compute_or_load": ".cache.outputs",
    "teacher_fingerprint": ".cache.fingerprint",
    "cache_root": ".cache.store",
    # student and mapping
    "Student": ".student.model",
    "build_student": ".student.build",
    "count_parameters": ".student.model",
    "layer_mapping": ".student.mapping",
    "check_mapping": ".student.mapping",
    "MAPPING_KINDS": ".student.mapping",
    # one run
    "distill": ".distillation.run",
    "DistillResult": ".distillation.run",
    "Diverged": ".distillation.run",
    "EarlyStopped": ".distillation.run",
    "predict_logits": ".compute.predict",
    "resolve_device": ".compute.device",
    "configure_threads": ".compute.device",
    # measuring
    "confidence_metrics": ".measure.metrics",
    "softmax": ".measure.metrics",
    "METRICS": ".measure.catalogue",
    "OBJECTIVES": ".measure.catalogue",
    "audit": ".measure.audit",
    "audit_models": ".measure.audit",
    # the Optuna adapter
    "make_objective": ".search.trial",
    "suggest_config": ".search.trial",
})
