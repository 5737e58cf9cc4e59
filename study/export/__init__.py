"""From a chosen trial to a production student: the export file, the teacher it names,
``kdtune distill``, its model card, and ONNX and INT8 formats.

Public names are imported on first use (:mod:`kdtune.lazy`).
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "card_data": ".card",
    "card_section": ".card",
    "model_card": ".card",
    "MARKER": ".file",
    "check_writable": ".file",
    "read_checked": ".file",
    "verify_export": ".file",
    "with_checksum": ".file",
    "convert_and_audit": ".formats",
    "PICKS": ".pick",
    "RULES": ".pick",
    "check_rule": ".pick",
    "knee": ".pick",
    "pick_description": ".pick",
    "pick_trial": ".pick",
    "study_pick": ".pick",
    "resolve_teacher": ".teacher",
    "teacher_record": ".teacher",
    "ExportSource": ".trial",
    "ExportedConfig": ".trial",
    "distill_from_file": ".trial",
    "export_source": ".trial",
    "export_trial": ".trial",
    "read_distill_config": ".trial",
})
