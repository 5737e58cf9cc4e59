"""The teacher-output cache: the teacher runs once per data split and fingerprint, every trial
reads its outputs from disk.

Public names are imported on first use (:mod:`kdtune.lazy`).
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "checkpoint_digest": ".fingerprint",
    "checkpoint_files": ".fingerprint",
    "file_digest": ".fingerprint",
    "teacher_fingerprint": ".fingerprint",
    "compute_or_load": ".outputs",
    "estimate_intermediate_bytes": ".outputs",
    "CACHE_FORMAT_VERSION": ".store",
    "MANIFEST": ".store",
    "TeacherOutputs": ".store",
    "cache_root": ".store",
    "find_variant": ".store",
    "offsets": ".store",
    "read_variant": ".store",
    "store_variant": ".store",
    "variant_name": ".store",
})
