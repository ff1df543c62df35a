"""The registry layer's errors (categories, exit codes and HTTP statuses: common/errors.py)."""

from common.errors import BadInput, NotFound, Unavailable


class RegistryError(BadInput):
    """The registry cannot do what was asked (a bad model name, an option missing, a download that does not
    match what was registered)."""


class RegistryNotFound(NotFound, RegistryError):
    """No such registered model, version or alias; the message lists what there is."""


class RegistryUnavailable(Unavailable, RegistryError):
    """The tracking server or its artifact store cannot be reached and no verified cached copy will do."""
