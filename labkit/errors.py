"""The one exception type for problems a user can cause.

Every stage raises :class:`LabkitError` (or a subclass) with a message that names the
problem *and* the fix. The CLI prints these without a traceback; anything else is a bug.
"""


class LabkitError(Exception):
    """A problem with the user's input or environment, with the fix in the message."""


class DatasetError(LabkitError, ValueError):
    """Bad data: a malformed file, wrong shapes or dtypes."""


class ToolMissingError(LabkitError):
    """An external program (compiler, emulator, arduino-cli) is not installed."""


class UnsupportedModelError(LabkitError):
    """A model the C back end cannot translate (unsupported op, float model, ...)."""
