"""Settings files as typed dataclasses: one loader for every configuration FaceStudio reads.

`load_dataclass(path_or_dict, cls)` reads TOML, YAML or JSON (or takes a dict) and builds `cls`
key by key: an unknown or mistyped key names the closest known one, a value of the wrong type
or outside its range names the key and what it must be. Ranges are declared on the fields
(`learning_rate: PositiveFloat`), so every field of a class is checked the same way; floats
must be finite and strings may not hold NUL bytes. Nothing is built or written before the
whole file has passed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from facestudio.errors import FaceStudioError
from facestudio.structured_files import quote, read_structured_file, shown

T = TypeVar("T")


@dataclass(frozen=True)
class Range:
    """Allowed values of a numeric field: `low` <= value (< when `low_open`) <= `high`."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def admits(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"<= {self.high:g}"
        return f"{'>' if self.low_open else 'at least'} {self.low:g} and at most {self.high:g}"


PositiveInt = Annotated[int, Range(1)]
NonNegativeInt = Annotated[int, Range(0)]
PositiveFloat = Annotated[float, Range(0, low_open=True)]
NonNegativeFloat = Annotated[float, Range(0)]
Probability = Annotated[float, Range(0, 1)]
Seed = Annotated[int, Range(0, 2**63 - 1)]


def read_settings_file(path: str | Path, what: str = "config") -> dict:
    """The table of settings in a .toml, .yaml/.yml or .json file, through the bounded reader
    (`facestudio.structured_files`: size, nesting and number length checked, YAML read safely)."""
    data = read_structured_file(path, what)
    if data is None:  # an empty YAML file
        return {}
    if not isinstance(data, dict):
        raise FaceStudioError(
            f"{what} {quote(path)} must hold a table of settings at the top level"
        )
    return data


def load_dataclass(
    source: str | Path | dict,
    cls: type[T],
    *,
    what: str = "config",
    name: str | None = None,
    noun: str = "key",
    prefix: str = "",
) -> T:
    """`cls` built from a settings file or a dict, every key and value checked.

    `what` the file is called in errors ("benchmark definition"); `name` says where the
    settings come from (default: the file's path); `noun` is what a key is called ("unknown
    face analysis setting 'x'"); `prefix` is put before key names (a nested table's path).
    """
    if isinstance(source, dict):
        data, name = source, name or "the settings"
    else:
        data, name = read_settings_file(source, what), name or quote(source)
    return _build(cls, data, prefix, name, noun)


def check_dataclass(instance: T, name: str = "the settings") -> T:
    """A dataclass made in code checked as if it had been loaded (types, ranges)."""
    return _build(type(instance), dataclasses.asdict(instance), "", name, "key")


def _build(cls, data, prefix: str, source: str, noun: str = "key"):
    if not isinstance(data, dict):
        where = quote(prefix.rstrip(".")) if prefix else "the top level"
        raise FaceStudioError(f"{where} in {source} must be a table of settings")
    hints = typing.get_type_hints(cls, include_extras=True)
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    values = {}
    for key, value in data.items():
        if key not in known:
            raise _unknown_key(key, known, prefix, source, noun)
        values[key] = _value(value, hints[key], f"{prefix}{key}", source)
    missing = [f.name for f in dataclasses.fields(cls) if _required(f) and f.name not in values]
    if missing:
        raise FaceStudioError(f"{source} needs '{prefix}{missing[0]}'")
    return cls(**values)


def _unknown_key(key, known: list[str], prefix: str, source: str, noun: str) -> FaceStudioError:
    """The error for a key `cls` does not have, naming the closest known key (a key of a
    hundred kB is compared by its first 100 characters: difflib is quadratic)."""
    close = difflib.get_close_matches(str(key)[:100], known, n=1)
    hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; known: {', '.join(known)}"
    return FaceStudioError(f"unknown {noun} {quote(f'{prefix}{key}')} in {source}{hint}")


def _required(field: dataclasses.Field) -> bool:
    return (
        field.init
        and field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    )


def _value(value, kind, name: str, source: str):
    """`value` checked against the annotation `kind` (and converted: int -> float, list -> tuple)."""
    if typing.get_origin(kind) is Annotated:
        base, *marks = typing.get_args(kind)
        value = _value(value, base, name, source)
        for mark in marks:
            if isinstance(mark, Range) and not mark.admits(value):
                raise FaceStudioError(
                    f"{quote(name)} in {source} must be {mark.describe()}, got {shown(value)}"
                )
        return value
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, f"{name}.", source)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Literal:
        if value not in args:
            options = ", ".join(repr(v) for v in args)
            raise FaceStudioError(
                f"{quote(name)} in {source} must be one of {options}, got {shown(value)}"
            )
        return value
    if origin in (types.UnionType, typing.Union):
        return _union(value, args, name, source)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _wrong_type(name, source, "a list", value)
        element = args[0] if args else Any
        return origin(_value(v, element, f"{name}[{i}]", source) for i, v in enumerate(value))
    return _scalar(value, origin or kind, name, source)


def _union(value, options, name: str, source: str):
    if value is None and type(None) in options:
        return None
    errors = []
    for option in (o for o in options if o is not type(None)):
        try:
            return _value(value, option, name, source)
        except FaceStudioError as exc:
            errors.append(exc)
    raise errors[0]


def _scalar(value, base, name: str, source: str):
    if base is Any:
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type(name, source, "a number", value)
        if not math.isfinite(value):
            raise FaceStudioError(
                f"{quote(name)} in {source} must be a finite number, got {shown(value)}"
            )
        return float(value)
    if base is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise _wrong_type(name, source, "a whole number (int)", value)
    if isinstance(base, type) and not isinstance(value, base):
        raise _wrong_type(name, source, _NAMES.get(base, base.__name__), value)
    if isinstance(value, str) and "\0" in value:
        raise FaceStudioError(f"{quote(name)} in {source} must not contain a NUL character")
    return value


_NAMES = {str: "a string (str)", bool: "true or false (bool)", dict: "a table (dict)"}


def _wrong_type(name: str, source: str, expected: str, value) -> FaceStudioError:
    return FaceStudioError(
        f"{quote(name)} in {source} must be {expected}, got {type(value).__name__} {shown(value)}"
    )
