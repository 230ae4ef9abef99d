"""Domain exceptions; the CLI maps each to an exit status in one place."""


class CsMetricsError(Exception):
    """Base class: a failure the user can act on, with a one-line message."""

    exit_code = 1


class UsageError(CsMetricsError):
    """The command was invoked wrongly (bad date, unknown timezone, ...)."""

    exit_code = 2


class InputError(CsMetricsError):
    """The input cannot be used at all (missing file or column, unreadable file)."""

    exit_code = 2


class StrictModeError(InputError):
    """--strict was given and some rows were bad."""


class LockHeldError(CsMetricsError):
    """Another weekly run holds the lock on the same output folder."""

    exit_code = 3
