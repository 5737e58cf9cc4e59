"""kdtune's errors: one root, a few kinds, each with the exit code the CLI gives it.

Every failure kdtune can explain is a :class:`KdtuneError` whose message is one readable
line. The CLI prints it as ``kdtune: error: <message>`` and exits with the class's
``exit_code``: 2 for a usage problem (bad config, bad flag, missing input the user names),
1 for a runtime failure (the database went away, a study cannot finish). Anything else is a
bug: the CLI prints one line saying so and that ``kdtune --debug`` shows the traceback.

Errors from libraries (SQLAlchemy, psycopg2, transformers, datasets) are translated into
these once, where kdtune meets the library (``raise ... from e``), never passed through.
"""

from __future__ import annotations


class KdtuneError(RuntimeError):
    """A known failure with a readable one-line message. Exit code 1."""

    exit_code = 1


class UsageError(KdtuneError, ValueError):
    """The user asked for something that cannot work: a bad flag, value or file. Exit code 2.

    Also a :class:`ValueError`, so library-style callers can catch it as one.
    """

    exit_code = 2


class ConfigError(UsageError):
    """A config has problems; :attr:`problems` lists each as one line naming its key path.

    ``str(error)`` is the problem itself when there is one, else a count followed by every
    problem on its own line; the CLI prints each problem as its own ``kdtune: error:`` line.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            text = self.problems[0]
        else:
            text = "\n".join([f"{len(self.problems)} problems:", *self.problems])
        super().__init__(text)


class StudyNotFound(UsageError):
    """No study of that name exists in the storage."""


class StorageError(KdtuneError):
    """The storage cannot be reached or used; the message masks any password."""


class DataError(UsageError):
    """A data source is missing or unusable (no file, no column, fewer than two classes)."""


class TrialError(KdtuneError):
    """A trial cannot produce metrics (it diverged, or its configuration cannot train)."""


__all__ = [
    "ConfigError",
    "DataError",
    "KdtuneError",
    "StorageError",
    "StudyNotFound",
    "TrialError",
    "UsageError",
]
