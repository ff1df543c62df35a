"""The corpus layer's errors (categories and exit codes: common/errors.py)."""

from common.errors import BadInput, Conflict


class CorpusError(BadInput):
    """A corpus, label file or image cannot be used; the message names the file and, where known, the line."""


class CorpusConflict(Conflict, CorpusError):
    """The output folder already holds something else (a different corpus); --overwrite replaces it."""
