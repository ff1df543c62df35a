"""Parameter validation, one set for the CLI, the MLproject entry points and the library.

MLflow passes every entry-point parameter as a string, numbers as given ("60" or "60.0"), and an empty
string for "use the default"; the CLI passes what the user typed. Each validator takes the parameter's name
and raw value and returns the typed value, or raises ParameterError naming the parameter and what was wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from common.errors import BadInput


class ParameterError(BadInput):
    """A parameter of a command, entry point or library call is wrong; the message names it."""


def is_default(value: Any) -> bool:
    """None or an empty string: the caller asks for the default (MLproject passes '' for it)."""
    return value is None or (isinstance(value, str) and not value.strip())


def number(name: str, value: Any) -> float:
    """A finite number given as int, float or text (inf and nan are refused: a time, load or budget is finite)."""
    try:
        got = float(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"parameter {name}: expected a number, got {value!r}") from exc
    if not math.isfinite(got):
        raise ParameterError(f"parameter {name}: expected a finite number, got {value!r}")
    return got


def integer(name: str, value: Any) -> int:
    """An integer given as int, float or text ("60", "60.0")."""
    as_float = number(name, value)
    if not as_float.is_integer():
        raise ParameterError(f"parameter {name}: expected an integer, got {value!r}")
    return int(as_float)


def positive_int(name: str, value: Any) -> int:
    number = integer(name, value)
    if number < 1:
        raise ParameterError(f"parameter {name} must be positive, got {value!r}")
    return number


def non_negative_int(name: str, value: Any) -> int:
    number = integer(name, value)
    if number < 0:
        raise ParameterError(f"parameter {name} must not be negative, got {value!r}")
    return number


def positive_float(name: str, value: Any) -> float:
    got = number(name, value)
    if not got > 0:
        raise ParameterError(f"parameter {name} must be positive, got {value!r}")
    return got


def non_negative_float(name: str, value: Any) -> float:
    got = number(name, value)
    if not got >= 0:
        raise ParameterError(f"parameter {name} must not be negative, got {value!r}")
    return got


def fraction(name: str, value: Any) -> float:
    """A number in [0, 1)."""
    got = number(name, value)
    if not 0 <= got < 1:
        raise ParameterError(f"parameter {name}: must be in [0, 1), got {got}")
    return got


def names(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """A comma-separated list (or a sequence) as a tuple of stripped, non-empty items; () for the default."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(str(v).strip() for v in value if str(v).strip())


def or_default(value: Any, default: Any) -> Any:
    """`default` where the caller asked for it (None or ''), else `value`."""
    return default if is_default(value) else value
