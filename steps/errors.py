"""The steps layer's errors (categories, exit codes and HTTP statuses: common/errors.py)."""

from common.errors import BadInput, NotFound, Unavailable


class StepError(BadInput):
    """A variant cannot be built or run as asked: a bad parameter, a bad input record, a model file that does
    not match its recorded sha256."""


class UnknownVariant(NotFound, StepError):
    """No variant (or step) of that id or name; the message lists the valid ones."""


class ModelNotTrained(Unavailable, StepError):
    """A learned variant's model files do not exist yet (`cardflow train` makes them)."""
