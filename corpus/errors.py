"""The corpus layer's errors (categories and exit codes: common/errors.py)."""

from common.errors import BadInput


class CorpusError(BadInput):
    """A corpus, label file or image cannot be used; the message names the file and, where known, the line."""
