"""User-facing errors.

Every mistake a user can make (unknown model, corrupt data file, bad flag value, missing run directory)
raises an :class:`ArchlabError` whose message is one paragraph: what was wrong and what to do. The CLI
prints the message and exits non-zero, with no traceback.
"""


class ArchlabError(Exception):
    """Base class of errors whose message is meant for the user, not for a developer."""


class DataError(ArchlabError):
    """A data set could not be fetched, verified or loaded."""


class ConfigError(ArchlabError):
    """A configuration value, recipe or flag is invalid."""


class RunError(ArchlabError):
    """A run directory is missing, incomplete or unreadable."""
