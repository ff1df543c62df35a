"""Configuration as frozen, typed objects: a strict loader from parsed YAML (or JSON) into dataclasses.

A dataclass's field type hints are the schema:

    int, float, str, bool            a value of that type (YAML `true` is not an integer; 3 is a number)
    tuple[X, ...], tuple[X, Y]       a list, of any length / of exactly that many items
    dict[K, V]                       a mapping; K is str, or a Literal naming the allowed keys
    Literal["a", "b"]                one of these values
    X | None, X | Y                  either
    a dataclass                      a mapping of its fields: unknown keys refused, a field without a default
                                     required; `field(metadata={"key": "yaml_name"})` when the key differs
    Annotated[X, Check(...), "text"] X, then each check; a string says what is expected, for messages
    Any                              anything, as parsed

Every message names the file and the dotted key path, e.g.
`configs/pipeline.yaml: profile.cores[1]: expected an integer, got 'two'`.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from common.errors import BadInput

T = TypeVar("T")


class ConfigError(BadInput):
    """A configuration file (or a typed record read back from JSON) is wrong; the message names the file and the
    key path. HTTP 400, exit 2."""


@dataclass(frozen=True)
class Check:
    """A rule on an already typed value, for `Annotated`: `test(value)` must hold; `text` completes "must be …"."""

    test: Callable[[Any], bool]
    text: str


POSITIVE = Check(lambda v: v > 0, "positive")
NON_NEGATIVE = Check(lambda v: v >= 0, "0 or more")
NON_EMPTY = Check(lambda v: len(v) > 0, "non-empty")
PositiveInt = Annotated[int, POSITIVE]
NonNegativeInt = Annotated[int, NON_NEGATIVE]
PositiveFloat = Annotated[float, POSITIVE]
NonNegativeFloat = Annotated[float, NON_NEGATIVE]


def within(low: float, high: float, *, high_open: bool = False) -> Check:
    """low ≤ value ≤ high (< high when high_open)."""
    if high_open:
        return Check(lambda v: low <= v < high, f"in [{low}, {high})")
    return Check(lambda v: low <= v <= high, f"in [{low}, {high}]")


def config_error(source: str | Path, where: str, message: str) -> ConfigError:
    """The error for `message` about key path `where` (empty: the whole file) of `source`."""
    return ConfigError(f"{source}: {where}: {message}" if where else f"{source}: {message}")


def read_yaml(path: str | Path) -> Any:
    """A YAML file, parsed; an unreadable or malformed file is a ConfigError naming it."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc


def load(cls: type[T], data: Any, source: str | Path, where: str = "", **given: Any) -> T:
    """`data` (a parsed mapping) as a `cls` dataclass, every value checked against the field's type; `given`
    fills fields that do not come from the file (and may not appear in it)."""
    if not isinstance(data, Mapping):
        raise config_error(source, where, f"expected a mapping, got {_show(data)}")
    hints = get_type_hints(cls, include_extras=True)
    fields = {f.metadata.get("key", f.name): f for f in dataclasses.fields(cls) if f.init and f.name not in given}
    unknown = [key for key in data if key not in fields]
    if unknown:
        raise config_error(source, where, f"unknown key {', '.join(map(repr, unknown))}; "
                                          f"valid keys: {', '.join(sorted(fields))}")
    missing = [key for key, f in fields.items() if key not in data and _required(f)]
    if missing:
        raise config_error(source, where, f"missing key {', '.join(map(repr, missing))}")
    values = {fields[key].name: _convert(hints[fields[key].name], value, source, _join(where, key))
              for key, value in data.items()}
    return cls(**given, **values)


def load_file(cls: type[T], path: str | Path) -> T:
    """A whole YAML file as a `cls`."""
    return load(cls, read_yaml(path), path)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert(tp: Any, value: Any, source: str | Path, where: str, expected: str | None = None) -> Any:
    """`value` as type `tp`, or ConfigError naming `where`; `expected` overrides how `tp` is described."""
    origin, args = get_origin(tp), get_args(tp)

    def mismatch() -> ConfigError:
        return config_error(source, where, f"expected {expected or describe(tp)}, got {_show(value)}")

    if tp is Any:
        return value
    if origin is Annotated:
        inner, *meta = args
        text = next((m for m in meta if isinstance(m, str)), expected)
        out = _convert(inner, value, source, where, text)
        for check in (m for m in meta if isinstance(m, Check)):
            if not check.test(out):
                raise config_error(source, where, f"must be {check.text}, got {_show(value)}")
        return out
    if dataclasses.is_dataclass(tp):
        return load(tp, value, source, where)
    if origin in (Union, types.UnionType):
        return _union(tp, value, source, where, expected)
    if origin is Literal:
        if any(value == choice and type(value) is type(choice) for choice in args):
            return value
        raise mismatch()
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise mismatch()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], item, source, f"{where}[{k}]") for k, item in enumerate(value))
        if len(value) != len(args):
            raise mismatch()
        pairs = zip(args, value, strict=True)
        return tuple(_convert(a, item, source, f"{where}[{k}]") for k, (a, item) in enumerate(pairs))
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise mismatch()
        key_type, value_type = args
        allowed = get_args(key_type) if get_origin(key_type) is Literal else None
        for key in value:
            if allowed is not None and key not in allowed:
                raise config_error(source, where, f"unknown key {key!r}; valid keys: {', '.join(map(str, allowed))}")
            if not isinstance(key, str):
                raise config_error(source, where, f"keys must be strings, got {key!r}")
        return {key: _convert(value_type, item, source, _join(where, key)) for key, item in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise mismatch()
    if tp is int or tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and (tp is float or isinstance(value, int)):
            return tp(value)
        raise mismatch()
    if tp is str:
        if isinstance(value, str):
            return value
        raise mismatch()
    raise TypeError(f"common.config cannot read values of type {tp!r} (at {where})")  # a schema bug, not bad input


def _union(tp: Any, value: Any, source: str | Path, where: str, expected: str | None) -> Any:
    options = [a for a in get_args(tp) if a is not type(None)]
    if value is None and len(options) < len(get_args(tp)):
        return None
    if len(options) == 1:
        return _convert(options[0], value, source, where, expected)
    errors = []
    for option in options:
        try:
            return _convert(option, value, source, where)
        except ConfigError as exc:
            errors.append((option, exc))
    # A value shaped like one option (a list, for `"auto" | tuple[str, ...]`) gets that option's own message,
    # which names the item at fault; otherwise say what any of them would have been.
    fitting = [exc for option, exc in errors if isinstance(value, _shape(option))]
    if len(fitting) == 1:
        raise fitting[0]
    raise config_error(source, where, f"expected {expected or describe(tp)}, got {_show(value)}")


def _shape(tp: Any) -> type | tuple[type, ...]:
    """The Python type(s) a parsed value must have to be read as `tp`, looking no deeper than the top."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return _shape(args[0])
    if dataclasses.is_dataclass(tp) or origin in (dict, Mapping):
        return Mapping
    if origin is tuple:
        return (list, tuple)
    if origin is Literal:
        return tuple({type(choice) for choice in args})
    if tp is float:
        return (int, float)
    return tp if isinstance(tp, type) else object


def describe(tp: Any) -> str:
    """What a value of type `tp` looks like, for messages ("an integer", "a list", "'scan' or 'phone'")."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return next((m for m in args[1:] if isinstance(m, str)), None) or describe(args[0])
    if dataclasses.is_dataclass(tp) or origin in (dict, Mapping):
        return "a mapping"
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) if a is not type(None) else "null" for a in args)
    if origin is Literal:
        return " or ".join(map(repr, args)) if len(args) <= 2 else f"one of {', '.join(map(repr, args))}"
    if origin is tuple:
        return "a list" if len(args) == 2 and args[1] is Ellipsis else f"a list of {len(args)}"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Any: "anything"}
    return names.get(tp, repr(tp))
