"""The one error table: every error CardFlow raises on purpose, its CLI exit code and its HTTP status.

Five categories (the way KServe's `errors.py` names the status in each error's docstring and maps them in
one handler table); every error class derives from exactly one of them, and `outcome()` finds its row:

| category      | meaning                                                        | exit | HTTP |
|---------------|----------------------------------------------------------------|------|------|
| `BadInput`    | a file, field, tensor or parameter is wrong; fix the input      | 2    | 400  |
| `NotFound`    | a named thing (model, version, alias, run, variant) is not there | 2    | 404  |
| `Conflict`    | the request contradicts what exists (a different corpus in place) | 2    | 409  |
| `Unavailable` | not ready yet, or a dependency (server, S3) is down; try again   | 4    | 503  |
| `Overloaded`  | too many requests in flight; try again later                    | 4    | 429  |
| `Internal`    | a bug: CardFlow broke its own contract                          | 1    | 500  |

A gate that refuses a promotion is a result, not an error: the CLI exits 3 (`EXIT_REFUSED`). Ctrl-C exits 130.
Any other exception reaching the CLI or a server is reported as `Internal` (exit 1, HTTP 500). Every message
names the file, field, tensor, parameter or URI at fault; errors from storage or MLflow are re-raised with the
URI and the original error as their cause.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_REFUSED = 3  # a gate refused (a result the caller asked about, not an error)
EXIT_INTERRUPTED = 130


class CardflowError(Exception):
    """Base of every error CardFlow raises on purpose. Abstract: raise one of the categories below (or a
    domain error derived from one)."""


class BadInput(CardflowError):
    """A file, field, tensor or parameter is wrong; the message names it. HTTP 400, exit 2."""


class NotFound(CardflowError):
    """A named model, version, alias, run or variant does not exist; the message lists what does. HTTP 404, exit 2."""


class Conflict(CardflowError):
    """The request contradicts what already exists. HTTP 409, exit 2."""


class Unavailable(CardflowError):
    """Not ready yet, or a dependency (tracking server, S3, a step server) is down; worth retrying. HTTP 503, exit 4."""


class Overloaded(Unavailable):
    """Too many requests in flight; retry after a while. HTTP 429, exit 4."""


class Internal(CardflowError):
    """CardFlow broke its own contract (a bug, to be reported). HTTP 500, exit 1."""


@dataclass(frozen=True)
class Outcome:
    """How an error leaves CardFlow: the command's exit code and the HTTP status of a server's response."""

    exit_code: int
    http_status: int


# The one table.
TABLE: tuple[tuple[type[CardflowError], Outcome], ...] = (
    (Overloaded, Outcome(exit_code=4, http_status=429)),
    (Unavailable, Outcome(exit_code=4, http_status=503)),
    (BadInput, Outcome(exit_code=2, http_status=400)),
    (NotFound, Outcome(exit_code=2, http_status=404)),
    (Conflict, Outcome(exit_code=2, http_status=409)),
    (Internal, Outcome(exit_code=1, http_status=500)),
)
CATEGORIES = tuple(category for category, _ in TABLE)
INTERNAL = Outcome(exit_code=1, http_status=500)


def category(error_type: type[BaseException]) -> type[CardflowError] | None:
    """The category of an error class: the first one in its method resolution order, so a domain error that
    names its category first (`class UnknownVariant(NotFound, StepError)`) gets that row. None for a class
    outside the table (CardflowError itself, or an exception CardFlow did not raise on purpose)."""
    return next((c for c in error_type.__mro__ if c in CATEGORIES), None)


def outcome(error: BaseException) -> Outcome:
    """Exit code and HTTP status of an error; anything CardFlow did not raise on purpose is Internal."""
    found = category(type(error))
    return dict(TABLE)[found] if found else INTERNAL
