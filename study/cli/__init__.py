"""The ``kdtune`` command line: one module per command group, a thin layer over the study
functions. ``python -m kdtune.study.cli`` runs it.

Public names are imported on first use (:mod:`kdtune.lazy`).
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "audit_options": ".audit",
    "audit_overrides": ".audit",
    "audit_settings": ".audit",
    "register_audit_command": ".audit",
    "emit": ".common",
    "plain_output": ".common",
    "print_json": ".common",
    "quiet_library_bars": ".common",
    "report": ".common",
    "stopped": ".common",
    "usage_error": ".common",
    "warn": ".common",
    "demo_study_config": ".demo",
    "demo_teacher_config": ".demo",
    "run_demo": ".demo",
    "format_lines": ".production",
    "register_production_commands": ".production",
    "app": ".root",
    "main": ".root",
    "register_search_commands": ".search",
    "teacher_app": ".search",
    "write_example_config": ".templates",
    "entry_line": ".verdict",
    "register_front_commands": ".verdict",
    "test_after_run": ".verdict",
})
