"""The teacher: its base checkpoint, fitting it, loading it, its live forward, and the cache of
fitted teachers.

Public names are imported on first use (:mod:`kdtune.lazy`).
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "MINILM": ".base",
    "load_base_classifier": ".base",
    "load_base_tokenizer": ".base",
    "resolve_base": ".base",
    "TeacherFitConfig": ".fit",
    "fit_teacher": ".fit",
    "check_available": ".forward",
    "forward_teacher": ".forward",
    "layer_indices": ".forward",
    "TEACHER_METADATA": ".load",
    "load_teacher": ".load",
    "read_teacher_metadata": ".load",
    "FitProgress": ".progress",
    "PLAIN_INTERVAL_S": ".progress",
    "library_progress": ".progress",
    "progress_bar": ".progress",
    "cached_teacher": ".registry",
    "teacher_cache_key": ".registry",
    "NO_DIRECTORY": ".source",
    "checkpoint_source": ".source",
    "hub_offline": ".source",
    "hub_reachable": ".source",
})
