"""The student: its shape and size, the task vocabulary, the layer mapping, building it from
its teacher's weights, and its latency against the teacher.

Public names are imported on first use (:mod:`kdtune.lazy`).
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "ATTENTION_IMPLEMENTATIONS": ".build",
    "INIT_MODES": ".build",
    "build_student": ".build",
    "SELECTIONS": ".from_teacher",
    "copy_teacher_weights": ".from_teacher",
    "select": ".from_teacher",
    "shape_latency_ratio": ".latency",
    "MAPPING_KINDS": ".mapping",
    "attention_pairs": ".mapping",
    "check_mapping": ".mapping",
    "hidden_state_pairs": ".mapping",
    "layer_mapping": ".mapping",
    "MODEL_INPUTS": ".model",
    "Student": ".model",
    "StudentOutput": ".model",
    "count_parameters": ".model",
    "WIDTH_FRACTIONS": ".size",
    "auto_widths": ".size",
    "parameter_count": ".size",
    "student_config": ".size",
    "student_parameters": ".size",
    "student_shape": ".size",
    "teacher_config": ".size",
    "teacher_parameters": ".size",
    "TaskVocabulary": ".vocabulary",
    "VOCABULARIES": ".vocabulary",
    "check_wordpiece": ".vocabulary",
    "shrink_embeddings": ".vocabulary",
    "task_vocabulary": ".vocabulary",
    "tokenised_differently": ".vocabulary",
    "tokenizer_kind": ".vocabulary",
    "used_token_ids": ".vocabulary",
})
