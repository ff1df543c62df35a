"""Errors CardFlow raises on purpose. Every message names the file, field or parameter at fault."""


class CardflowError(Exception):
    """Base of every error CardFlow raises on purpose; the CLI prints its message (no traceback)."""


class CorpusError(CardflowError):
    """A corpus, label file or image cannot be used; the message names the file and, where known, the line."""
