"""Errors kdtune reports as one line (exit code 2) rather than a traceback."""


class KdtuneError(RuntimeError):
    """A known failure with a readable message (missing study, empty Pareto front, ...)."""


class StudyNotFound(KdtuneError):
    """No study of that name exists in the storage."""
