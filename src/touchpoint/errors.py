"""Errors a user can act on.

Every problem the CLI reports to a person is a ``TouchpointError``: its message is one line
that names what failed and what to do about it. The CLI prints it without a traceback.
"""


class TouchpointError(Exception):
    """A failure with a one-line, actionable message."""


class ConfigError(TouchpointError):
    """A setting is missing or malformed."""


class WarehouseError(TouchpointError):
    """The warehouse (embedded cluster or external server) cannot be used."""
